#!/usr/bin/env bash
# Install Debian's nginx for the tests' and the benchmark's caching proxy (tests/caching_proxy.py),
# which runs it as an unprivileged process of its own, with its own configuration and prefix, on
# free loopback ports. Does nothing when it is there. The package's own service is neither left
# running nor enabled: a policy-rc.d keeps the install from starting it (where the machine has no
# such policy already), and it is disabled afterwards, so nothing listens on port 80 at boot.
set -euo pipefail
if [ -x /usr/sbin/nginx ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
fi
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ] && [ -w "$(dirname "$policy")" -o -n "$SUDO" ]; then
  printf '#!/bin/sh\n# Left by scripts/install_nginx.sh while it installs nginx: no service starts.\nexit 101\n' \
    | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
"$(dirname "$0")/apt_install.sh" "the caching proxy in front of the delivery path" nginx
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now nginx.service >/dev/null 2>&1 || $SUDO systemctl disable nginx.service >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1; then
  $SUDO update-rc.d nginx disable >/dev/null 2>&1 || true
fi
if [ -e /run/nginx.pid ]; then
  $SUDO /usr/sbin/nginx -s quit >/dev/null 2>&1 || true
fi
