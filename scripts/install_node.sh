#!/usr/bin/env bash
# Install Node.js and npm from Debian's packages for the browser test's web app (Uppy, bundled
# with esbuild); does nothing when both are there.
set -euo pipefail
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
exec "$(dirname "$0")/apt_install.sh" "the browser test's web app" "${missing[@]}"
