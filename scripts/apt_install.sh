#!/usr/bin/env bash
# apt_install.sh "WHAT IT IS FOR" PACKAGE...: install Debian packages, or say in one sentence
# what to install by hand where there is no apt-get or no root.
set -euo pipefail
purpose="$1"
shift
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$purpose needs $* and there is no apt-get here: install $* with your package manager." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "Installing $* needs root: run 'apt-get install $*' as root." >&2; exit 1; }
  SUDO="sudo"
fi
echo "Installing $* from Debian's packages ($purpose)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
