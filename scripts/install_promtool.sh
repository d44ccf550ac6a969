#!/usr/bin/env bash
# Install Debian's prometheus for its promtool, which checks the example alert rules in
# docs/operations/; does nothing when promtool is there. Only promtool is used: no server is started.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
exec "$(dirname "$0")/apt_install.sh" "the alert rules' check" prometheus
