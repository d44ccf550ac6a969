#!/usr/bin/env bash
# What `make bench` needs beyond the project: Debian's libvips42 (pyvips loads it at run time;
# pip cannot install it), Debian's wrk (the HTTP load generator), and the `bench` extra
# (pyvips, requests, pyinstrument, py-spy, celery) in .venv. Installs only what is missing.
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
  scripts/apt_install.sh "make bench" "${missing[@]}"
fi

if ! .venv/bin/python -c 'import pyvips, requests, pyinstrument, celery' >/dev/null 2>&1 || [ ! -x .venv/bin/py-spy ]; then
  echo "Installing the bench extra (pyvips, requests, pyinstrument, py-spy, celery) into .venv..."
  .venv/bin/python -m pip install -q -e '.[test,bench]'
fi
.venv/bin/python -c 'import pyvips; pyvips.Image.black(1, 1)' || {
  echo "pyvips is installed but cannot load libvips: check that libvips42 is installed (ldconfig -p | grep libvips)." >&2
  exit 1
}
