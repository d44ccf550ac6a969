#!/usr/bin/env bash
# What `make bench` needs beyond the project: Debian's libvips42 (pyvips loads it at run time;
# pip cannot install it), Debian's wrk (the HTTP load generator), and the `bench` extra
# (pyvips, requests, pyinstrument) in .venv. Installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
if ! ldconfig -p 2>/dev/null | grep -q 'libvips\.so\.42'; then
  missing+=(libvips42)
fi
if ! command -v wrk >/dev/null 2>&1; then
  missing+=(wrk)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "The benchmark needs ${missing[*]} and there is no apt-get here: install libvips 8.x (libvips.so.42) and wrk with your package manager, then run make bench again." >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "Installing ${missing[*]} needs root: run 'apt-get install ${missing[*]}' as root." >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "Installing ${missing[*]} from Debian's packages..."
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! .venv/bin/python -c 'import pyvips, requests, pyinstrument' >/dev/null 2>&1; then
  echo "Installing the bench extra (pyvips, requests, pyinstrument) into .venv..."
  .venv/bin/python -m pip install -q -e '.[test,bench]'
fi
.venv/bin/python -c 'import pyvips; pyvips.Image.black(1, 1)' || {
  echo "pyvips is installed but cannot load libvips: check that libvips42 is installed (ldconfig -p | grep libvips)." >&2
  exit 1
}
