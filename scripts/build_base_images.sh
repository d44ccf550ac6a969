#!/usr/bin/env bash
# build_base_images.sh: where the official base images cannot be pulled (no registry reachable),
# build stand-ins for them from Debian's own packages in the engine DOCKER_HOST names, and print
# the compose variables that select them (NAME=image lines). Each image is made once per engine;
# an existing one is kept. The shipped compose files and Dockerfiles still default to the
# official images: only the tests pass these.
#
#   imgpipe-base/debian:bookworm     debootstrap --variant=minbase bookworm, this machine's CA bundle
#   imgpipe-base/python:3.11         + Debian's python3, python3-venv, python3-pip
#   imgpipe-base/golang:1.24         + this machine's Go toolchain and its module and build caches
#   imgpipe-base/redis:7             + Debian's redis-server
#   imgpipe-base/postgres:15         + Debian's postgresql-15 and an entrypoint like the official one
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN=imgpipe-base/debian:bookworm
STANDINS=docker/standins
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

have() { docker image inspect "$1" >/dev/null 2>&1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The Debian root file system, made once and kept until the Go stand-in is made from it too.
rootfs() {
  [ -d "$work/rootfs" ] && return
  command -v debootstrap >/dev/null 2>&1 || scripts/apt_install.sh "the compose tests' base images" debootstrap
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  mirror="${mirror:-$(sed -n 's/^deb \(http[^ ]*\) bookworm .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  echo "debootstrap bookworm from $mirror..." >&2
  debootstrap --variant=minbase --include=ca-certificates bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # Containers reach package indexes through this machine's CA, as the machine itself does.
  cp "$CA_BUNDLE" "$work/rootfs$CA_BUNDLE"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
}

if ! have "$DEBIAN"; then
  started=$SECONDS
  rootfs
  tar -C "$work/rootfs" -c . | docker import --change 'CMD ["bash"]' - "$DEBIAN" >/dev/null
  echo "$DEBIAN made in $((SECONDS - started)) s" >&2
fi

build() {  # build NAME DOCKERFILE CONTEXT
  have "$1" && return
  local started=$SECONDS
  docker build --quiet --network host --build-arg "BASE=$DEBIAN" -t "$1" -f "$2" "$3" >/dev/null
  echo "$1 made in $((SECONDS - started)) s" >&2
}

build imgpipe-base/python:3.11 "$STANDINS/python.Dockerfile" "$STANDINS"
build imgpipe-base/redis:7 "$STANDINS/redis.Dockerfile" "$STANDINS"
build imgpipe-base/postgres:15 "$STANDINS/postgres.Dockerfile" "$STANDINS"

# Go from /usr/local/go with root's module and build caches, at the same paths, so that the
# build's compile steps find what scripts/build_minio.sh compiled on this machine.
if ! have imgpipe-base/golang:1.24; then
  [ "$(go env GOROOT)" = /usr/local/go ] && [ "$(go env GOMODCACHE)" = /root/go/pkg/mod ] \
    && [ "$(go env GOCACHE)" = /root/.cache/go-build ] || {
    echo "The Go stand-in copies /usr/local/go, /root/go/pkg/mod and /root/.cache/go-build; here Go and its caches are elsewhere." >&2
    exit 1
  }
  started=$SECONDS
  rootfs
  tar -c -C "$work/rootfs" . -C / usr/local/go root/go/pkg/mod root/.cache/go-build \
    | docker import --change 'ENV PATH=/usr/local/go/bin:/root/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV GOTOOLCHAIN=local GOFLAGS=-buildvcs=false' --change 'CMD ["bash"]' - imgpipe-base/golang:1.24 >/dev/null
  echo "imgpipe-base/golang:1.24 made in $((SECONDS - started)) s" >&2
fi

cat <<EOF
IMGPIPE_DEBIAN_IMAGE=$DEBIAN
IMGPIPE_PYTHON_IMAGE=imgpipe-base/python:3.11
IMGPIPE_GOLANG_IMAGE=imgpipe-base/golang:1.24
IMGPIPE_REDIS_IMAGE=imgpipe-base/redis:7
IMGPIPE_POSTGRES_IMAGE=imgpipe-base/postgres:15
EOF
