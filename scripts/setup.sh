#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs to run and test edge-agent: Debian packages (mosquitto
# for the MQTT tests and the demo, GStreamer's RTSP server for the live-ingest tests), a venv with
# the package and its test tools, and the default detector model fetched and converted offline.
# Safe to run again: each step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mosquitto mosquitto-clients openssl python3-gi gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-tools
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

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

.venv/bin/edge-agent models fetch
bash scripts/build_image.sh --base-only  # the Debian base for the image test, once per machine (~1.5 min)
bash scripts/setup_ultralytics.sh  # .venv-ultra: torch + ultralytics for .pt/.engine and their tests (~1.5 min, ~6 GB)
