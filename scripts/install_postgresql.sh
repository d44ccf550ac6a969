#!/usr/bin/env bash
# Install Debian's PostgreSQL server when none is found: the tests run every database test on a
# throwaway cluster of it as well as on SQLite. Debian keeps initdb and postgres off PATH.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
exec "$(dirname "$0")/apt_install.sh" "the tests' PostgreSQL" postgresql
