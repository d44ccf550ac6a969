#!/usr/bin/env bash
# Create .venv and install the project into it with the test extra and any extras named as
# arguments (e.g. `scripts/install_python.sh moderation`); reinstalls only when pyproject.toml
# changed or an extra is asked for that is not installed yet.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "Python 3.11 or newer is needed: install python3 (with venv) and run again." >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Python 3.11 or newer is needed; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || { echo "Could not create a virtual environment: install python3-venv." >&2; exit 1; }
fi
extras=(test "$@")
hash=$(sha1sum pyproject.toml | cut -c1-12)
missing=()
for extra in "${extras[@]}"; do
  [ -f ".venv/.installed-$hash-$extra" ] || missing+=("$extra")
done
if [ ${#missing[@]} -gt 0 ]; then
  wanted=$(IFS=,; echo "${extras[*]}")
  echo "Installing imgpipe[$wanted] and its dependencies into .venv..."
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e ".[$wanted]"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "Installing the Python dependencies failed; the whole log is in $log." >&2
    exit 1
  fi
  find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-$hash-*" -delete
  for extra in "${extras[@]}"; do
    touch ".venv/.installed-$hash-$extra"
  done
fi
