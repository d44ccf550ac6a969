#!/usr/bin/env bash
# container_engine.sh start|stop|status: a private Docker daemon for the compose tests, on a socket
# of the project's, that leaves this machine's network as it found it.
#
#   start   installs Debian's docker.io when there is no dockerd, starts the daemon (unless it is
#           already up) and prints `DOCKER_HOST=unix://...` for the clients.
#   stop    stops it, then puts back the network sysctls it may have changed and deletes any
#           bridge or veth it left behind.
#   status  exits 0 when the daemon answers.
#
# The daemon makes no iptables rules, turns no forwarding on and has no default bridge:
# containers talk on compose's own networks, published ports go through docker-proxy and bind
# to 127.0.0.1 unless a compose file names another address, and builds use the host's network.
# Its data root (images and build cache) is kept per machine under IMGPIPE_ENGINE_CACHE, so a
# second run builds nothing that has not changed. Needs root (dockerd does).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${IMGPIPE_ENGINE_CACHE:-/var/cache/imgpipe/engine}"
RUN_DIR="${IMGPIPE_ENGINE_RUN:-/run/imgpipe-engine}"
SOCKET="$RUN_DIR/docker.sock"
PIDFILE="$RUN_DIR/dockerd.pid"
SAVED="$RUN_DIR/network-before"
LOG="$RUN_DIR/dockerd.log"
SYSCTLS=(/proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding /proc/sys/net/bridge/bridge-nf-call-iptables
         /proc/sys/net/bridge/bridge-nf-call-ip6tables /proc/sys/net/bridge/bridge-nf-call-arptables)
export DOCKER_HOST="unix://$SOCKET"

answers() { [ -S "$SOCKET" ] && docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# One line per sysctl (path and value) and one per network interface, taken before the daemon starts.
snapshot() {
  for path in "${SYSCTLS[@]}"; do
    [ -e "$path" ] && echo "sysctl $path $(cat "$path")"
  done
  ip -o link show | awk -F': ' '{print "link " $2}' | cut -d@ -f1
  return 0
}

start() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "The compose tests run their own Docker daemon, which needs root." >&2
    exit 1
  fi
  command -v docker >/dev/null 2>&1 || { echo "There is no docker client on PATH." >&2; exit 1; }
  if ! command -v dockerd >/dev/null 2>&1; then
    scripts/apt_install.sh "the compose tests' container engine" docker.io
  fi
  if answers; then
    echo "DOCKER_HOST=$DOCKER_HOST"
    return
  fi
  mkdir -p "$RUN_DIR" "$CACHE"
  snapshot > "$SAVED"
  rm -f "$PIDFILE" "$SOCKET"
  dockerd --host "$DOCKER_HOST" --data-root "$CACHE" --exec-root "$RUN_DIR/exec" --pidfile "$PIDFILE" \
    --iptables=false --ip-forward=false --ip-masq=false --bridge=none --ip=127.0.0.1 \
    --userland-proxy=true --log-level=warn >"$LOG" 2>&1 &
  for _ in $(seq 1 120); do
    if answers; then
      echo "DOCKER_HOST=$DOCKER_HOST"
      return
    fi
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  echo "dockerd did not start; its log ($LOG) ends:" >&2
  tail -20 "$LOG" >&2
  stop >/dev/null
  exit 1
}

stop() {
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
  fi
  if [ -f "$SAVED" ]; then
    while read -r kind name value; do
      if [ "$kind" = sysctl ] && [ -e "$name" ] && [ "$(cat "$name")" != "$value" ]; then
        echo "putting back $name = $value"
        echo "$value" > "$name"
      fi
    done < "$SAVED"
    ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | while read -r link; do
      if ! grep -qx "link $link" "$SAVED" && [[ "$link" == br-* || "$link" == veth* || "$link" == docker0 ]]; then
        echo "deleting $link, left by dockerd"
        ip link delete "$link"
      fi
    done
    rm -f "$SAVED"
  fi
  # dockerd leaves its handle on the host's network namespace mounted in the exec root.
  { grep -o " $RUN_DIR/exec[^ ]*" /proc/mounts || true; } | sort -r | while read -r mount; do umount "$mount"; done
  rm -rf "$SOCKET" "$RUN_DIR/exec"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
