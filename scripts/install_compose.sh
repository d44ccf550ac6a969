#!/usr/bin/env bash
# Build the docker compose plugin from source when the docker client has none, so that
# `docker compose config` can check docker-compose.yml (no Docker engine is needed for that).
# Does nothing when `docker compose` already works. Takes a few minutes the first time.
set -euo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"

if ! command -v docker >/dev/null 2>&1; then
  echo "There is no docker client here: install Docker to use docker-compose.yml." >&2
  exit 1
fi
if docker compose version >/dev/null 2>&1; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "docker compose is missing and building it needs Go 1.24 or newer: install Go or the docker-compose-plugin package." >&2
  exit 1
fi

# The module's go.mod has exclude directives, which `go install pkg@version` refuses:
# build inside a copy of the module instead, where they apply.
echo "Building the docker compose plugin $COMPOSE_VERSION from source (a few minutes the first time)..."
source_dir=$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$source_dir" "$work/compose"
chmod -R u+w "$work/compose"
mkdir -p "$PLUGIN_DIR"
(cd "$work/compose" && CGO_ENABLED=0 go build -trimpath -o "$PLUGIN_DIR/docker-compose" ./cmd)
echo "docker compose installed at $PLUGIN_DIR/docker-compose: $(docker compose version)"
