#!/usr/bin/env bash
# Build the x86 image with podman (no Docker engine needed). Usage:
#   scripts/build_image.sh [--registry-base] [--fetch-model] [--tag NAME] [--base-only] [--jetson-on-x86]
#                          [-- extra podman build args]
# By default the base is a Debian bookworm with Debian's Python made here by debootstrap, the local
# stand-in for python:3.11-slim-bookworm, imported as localhost/debian-bookworm:minbase-python3 (built
# once per machine, then reused from podman's image store; the tag changes when its contents do);
# --registry-base builds FROM python:3.11-slim-bookworm instead (needs an image registry).
# The model is the one `edge-agent models fetch` converted on this host (models/*.onnx), unless
# --fetch-model asks the build to fetch and convert it inside.
# --jetson-on-x86 then also builds Dockerfile.jetson on top of the x86 build stage (no L4T base, CPU
# onnxruntime instead of the Jetson wheel): its Python install steps, checked where no Jetson is.
# pip inside the build gets this machine's pip configuration and CA bundle through read-only
# mounts, as a build behind a package mirror needs; none of it stays in the image.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=localhost/edge-agent:x86
LOCAL_BASE=localhost/debian-bookworm:minbase-python3
BASE=$LOCAL_BASE
FETCH_MODEL=0
BASE_ONLY=0
JETSON=0
while [ $# -gt 0 ]; do
  case "$1" in
    --registry-base) BASE=python:3.11-slim-bookworm ;;
    --fetch-model) FETCH_MODEL=1 ;;
    --tag) TAG=$2; shift ;;
    --base-only) BASE_ONLY=1 ;;
    --jetson-on-x86) JETSON=1 ;;
    --) shift; break ;;
    *) echo "build_image: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$BASE" = "$LOCAL_BASE" ] && ! podman image exists "$LOCAL_BASE"; then
  started=$(date +%s)
  rootfs=$(mktemp -d /var/tmp/edge-agent-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  echo "build_image: debootstrap bookworm (once per machine)"
  mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
  # Python in the base, as in python:*-slim: the image's own apt steps are then skipped
  debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$mirror" >/dev/null
  # the same suites as the host (security updates included), so the image gets fixed packages
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
    "$mirror" "$mirror" "$mirror" >"$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import - "$LOCAL_BASE" >/dev/null
  echo "build_image: base $LOCAL_BASE made in $(( $(date +%s) - started )) s"
fi

[ "$BASE_ONLY" = 0 ] || exit 0

if [ "$FETCH_MODEL" = 0 ] && ! ls models/*.onnx >/dev/null 2>&1; then
  echo "build_image: no models/*.onnx here; run 'edge-agent models fetch' or pass --fetch-model" >&2
  exit 2
fi

PIP_MOUNTS=()
pip_cert=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$pip_cert" ] && PIP_MOUNTS+=(-v "$pip_cert:/tmp/pip-ca.pem:ro" --build-arg PIP_CERT=/tmp/pip-ca.pem)
# the system-wide configuration (index, and /etc/xdg/pip also holds the constraints it may name)
for conf in /etc/pip.conf /etc/xdg/pip; do
  [ -e "$conf" ] && PIP_MOUNTS+=(-v "$conf:$conf:ro")
done

build() {  # TAG ARGS...: one podman build with the pip mounts; layer-cached
  local tag=$1 started
  shift
  started=$(date +%s)
  scripts/podman.sh build --network=host --layers --format docker "${PIP_MOUNTS[@]}" -t "$tag" "$@" .
  size=$(podman image inspect "$tag" --format '{{.Size}}')
  echo "build_image: $tag built in $(( $(date +%s) - started )) s, size $(( size / 1000000 )) MB ($size bytes)"
}
X86_ARGS=(--build-arg "BASE=$BASE" --build-arg "FETCH_MODEL=$FETCH_MODEL" -f Dockerfile.x86)
build "$TAG" "${X86_ARGS[@]}" "$@"
if [ "$JETSON" = 1 ]; then
  build "$TAG-build-stage" "${X86_ARGS[@]}" --target build "$@"
  build "$TAG-jetson-steps" --build-arg "BASE=$TAG-build-stage" --build-arg ORT_PACKAGE=onnxruntime \
    -f Dockerfile.jetson "$@"
fi
