#!/usr/bin/env bash
# Build the MinIO server from source into .tools/bin, once per machine.
# Does nothing when MINIO_BIN names a binary or one is already there (or on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

# The newest MinIO the Go module proxy serves (master, 2026-02-12; after RELEASE.2025-10-15T17-29-55Z
# and its CVE-2025-62506 fix). MinIO's release tags are not semver, so the pin is a pseudo-version.
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
TOOLS_BIN="$PWD/.tools/bin"

if [ -n "${MINIO_BIN:-}" ]; then
  [ -x "$MINIO_BIN" ] || { echo "MINIO_BIN=$MINIO_BIN is not an executable file." >&2; exit 1; }
  exit 0
fi
if [ -x "$TOOLS_BIN/minio" ] || command -v minio >/dev/null 2>&1; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "MinIO is built from source and needs Go 1.24 or newer: install Go (https://go.dev/doc/install) or set MINIO_BIN to a minio binary." >&2
  exit 1
fi

echo "Building MinIO $MINIO_VERSION with $(go version | cut -d' ' -f3) (the first build takes a few minutes)..."
mkdir -p "$TOOLS_BIN"
GOBIN="$TOOLS_BIN" CGO_ENABLED=0 go install "github.com/minio/minio@$MINIO_VERSION" &
build=$!
started=$SECONDS
while kill -0 "$build" 2>/dev/null; do
  sleep 1
  if (( (SECONDS - started) % 15 == 0 )) && kill -0 "$build" 2>/dev/null; then
    echo "  still building MinIO ($((SECONDS - started)) s)..."
  fi
done
wait "$build" || { echo "Building MinIO failed (see go's messages above)." >&2; exit 1; }
echo "MinIO installed at $TOOLS_BIN/minio after $((SECONDS - started)) s"
