#!/usr/bin/env bash
# Install Debian's chromium for the upload page's browser test; does nothing when it is there.
# Playwright drives this browser: its own browser downloads are never used.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "The browser test needs Chromium at /usr/bin/chromium and there is no apt-get here: install chromium with your package manager." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "Installing chromium needs root: run 'apt-get install chromium' as root." >&2; exit 1; }
  SUDO="sudo"
fi
echo "Installing chromium from Debian's packages (for the browser test)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
