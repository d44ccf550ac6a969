#!/usr/bin/env bash
# Install Debian's redis-server when none is on PATH.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then
  exit 0
fi
exec "$(dirname "$0")/apt_install.sh" "the local stack's Redis" redis-server
