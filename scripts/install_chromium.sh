#!/usr/bin/env bash
# Install Debian's chromium for the upload page's browser test; does nothing when it is there.
# Playwright drives this browser: its own browser downloads are never used.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
exec "$(dirname "$0")/apt_install.sh" "the browser test" chromium
