#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs to run and test edge-agent: Debian packages (mosquitto
# for the MQTT tests and the demo, GStreamer's RTSP server for the live-ingest tests), a venv with
# the package and its test tools, and the default detector model fetched and converted offline.
# Safe to run again: each step skips what is already there. Each part says how long it took.
#   scripts/setup.sh                     what a site box and the demo need
#   scripts/setup.sh --with-ultralytics  also .venv-ultra (torch + ultralytics, ~6 GB): only the .pt
#                                        backend's tests need it; scripts/test.sh asks for it
#   scripts/setup.sh --with-image-base   also the Debian base image the container test builds on
#                                        (debootstrap, once per machine); scripts/test.sh asks for it
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_ULTRA=0
WITH_IMAGE_BASE=0
for arg in "$@"; do
  case "$arg" in
    --with-ultralytics) WITH_ULTRA=1 ;;
    --with-image-base) WITH_IMAGE_BASE=1 ;;
    *) echo "setup.sh: unknown option $arg (known: --with-ultralytics, --with-image-base)" >&2; exit 2 ;;
  esac
done
SETUP_T0=$(date +%s)
part_t0=$SETUP_T0
took() {  # took PART: print how long the part since the previous call took
  local now; now=$(date +%s)
  echo "setup: $1 took $((now - part_t0)) s"
  part_t0=$now
}

APT_PACKAGES=(mosquitto mosquitto-clients openssl python3-gi gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-tools
  postgresql chromium  # the console's tests: a real PostgreSQL and a real browser (driven by Playwright)
  podman runc debootstrap systemd)  # the container image tests, and systemd-analyze for the unit

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
took "Debian packages"

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev,central,editor]'
took ".venv (the package, the console's and the zone editor's extras and the test tools)"

.venv/bin/edge-agent models fetch
took "default model"
# yolov3-tiny (the former default, named by tests and benchmarks) and its INT8 variant, quantised here
# from the fp32 file (about 20 s of CPU)
.venv/bin/edge-agent models fetch yolov3-tiny yolov3-tiny-int8
took "yolov3-tiny and its INT8 variant"
if [ "$WITH_ULTRA" = 1 ]; then
  bash scripts/setup_ultralytics.sh  # .venv-ultra: torch + ultralytics for .pt/.engine and their tests
  took ".venv-ultra (torch + ultralytics)"
fi
if [ "$WITH_IMAGE_BASE" = 1 ]; then
  bash scripts/build_image.sh --base-only  # the Debian base for the image test, once per machine
  took "image base (debootstrap)"
fi
echo "setup: done in $(( $(date +%s) - SETUP_T0 )) s"
