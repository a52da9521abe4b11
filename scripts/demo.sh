#!/usr/bin/env bash
# The whole system on one machine: the bundled footage served as RTSP cameras (GStreamer), the
# live agent, a local mosquitto, `edge-agent central` printing the alarms it receives, and the
# command-centre console (its address and demo log-in are printed; it stays up until Ctrl-C).
# Without GStreamer the same clips are played as looping file cameras.
#
#   scripts/demo.sh                 # 60 s
#   DEMO_SECONDS=120 scripts/demo.sh
#
# Everything it writes goes to data/demo/ (config, agent outbox, media central received).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

SECONDS_TO_RUN=${DEMO_SECONDS:-60}
DEMO=data/demo
rm -rf "$DEMO"
mkdir -p "$DEMO/zones"
PY=.venv/bin/python

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

CLIPS=(rail_intrusion boat_crossing vessel_moored rail_empty)
# Where each demo camera stands (the console's map places them): along the Scheveningen shore.
declare -A WHERE=([rail_intrusion]="{lat: 52.0942, lon: 4.2781}" [boat_crossing]="{lat: 52.1003, lon: 4.2646}"
                  [vessel_moored]="{lat: 52.0968, lon: 4.2588}" [rail_empty]="{lat: 52.1071, lon: 4.2853}")
if [ ! -f tests/footage/rail_intrusion.mp4 ]; then
  echo "demo: rendering the test footage"
  "$PY" scripts/make_footage.py
fi

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# --- cameras: RTSP when GStreamer is there, else looping files ---------------------------------
RTSP_PORT=""
if /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null; then
  RTSP_PORT=$(free_port)
  args=()
  for c in "${CLIPS[@]}"; do args+=("$c=tests/footage/$c.mp4"); done
  /usr/bin/python3 scripts/rtsp_server.py --port "$RTSP_PORT" --loop "${args[@]}" > "$DEMO/rtsp.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do grep -q '^ready' "$DEMO/rtsp.log" && break; sleep 0.1; done
  echo "demo: cameras at rtsp://127.0.0.1:$RTSP_PORT/{$(IFS=,; echo "${CLIPS[*]}")}"
else
  echo "demo: no GStreamer RTSP server; the clips play as looping file cameras"
fi

# --- broker --------------------------------------------------------------------------------------
MQTT_PORT=$(free_port)
mosquitto -p "$MQTT_PORT" > "$DEMO/mosquitto.log" 2>&1 &
PIDS+=($!)
sleep 0.3

SECRET=$("$PY" -c 'import secrets; print(secrets.token_hex(16))')  # signs the console's commands to the box

# --- config ---------------------------------------------------------------------------------------
{
  echo "site: {id: demo-harbour, timezone: UTC}"
  echo "device: {id: edge-01}"
  echo "mqtt:"
  echo "  host: 127.0.0.1"
  echo "  port: $MQTT_PORT"
  echo "  health_interval_s: 10"
  echo "  outbox: {path: $(pwd)/$DEMO/outbox.sqlite}"
  echo "  command_secret: $SECRET"
  echo "alarms: {store_dir: $(pwd)/$DEMO/media}"
  echo "cameras:"
  for c in "${CLIPS[@]}"; do
    cp "tests/footage/zones/$c.yaml" "$DEMO/zones/$c.yaml"
    if [ -n "$RTSP_PORT" ]; then
      echo "  - {id: $c, url: \"rtsp://127.0.0.1:$RTSP_PORT/$c\", detect_fps: 5, location: ${WHERE[$c]}}"
    else
      echo "  - {id: $c, url: \"$(pwd)/tests/footage/$c.mp4\", detect_fps: 5, loop: true, location: ${WHERE[$c]}}"
    fi
  done
} > "$DEMO/cameras.yaml"
.venv/bin/edge-agent check --config "$DEMO/cameras.yaml"

# --- central command, then the agent --------------------------------------------------------------
.venv/bin/edge-agent central --config "$DEMO/cameras.yaml" --out "$DEMO/central" \
  --duration $((SECONDS_TO_RUN + 15)) &
CENTRAL=$!
PIDS+=($CENTRAL)
sleep 1

# --- the console ---------------------------------------------------------------------------------
HTTP_PORT=${DEMO_HTTP_PORT:-$(free_port)}
cat > "$DEMO/central.yaml" <<CONF
timezone: UTC
database: {url: "sqlite:///central.sqlite"}
media: {dir: console-media}
http: {listen: "127.0.0.1:$HTTP_PORT"}
mqtt: {host: 127.0.0.1, port: $MQTT_PORT}
devices: {demo-harbour/edge-01: {command_secret: "$SECRET"}}
CONF
DEMO_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(9))')
DEMO_PASSWORD=$DEMO_PASSWORD .venv/bin/edge-agent central users add demo --role operator \
  --config "$DEMO/central.yaml" --password-env DEMO_PASSWORD >/dev/null
.venv/bin/edge-agent central serve --config "$DEMO/central.yaml" > "$DEMO/console.log" 2>&1 &
CONSOLE=$!
PIDS+=($CONSOLE)
for _ in $(seq 100); do grep -q 'console on' "$DEMO/console.log" && break; sleep 0.1; done
echo "demo: console at http://127.0.0.1:$HTTP_PORT/  log in as demo / $DEMO_PASSWORD"

echo "demo: running the agent for $SECONDS_TO_RUN s (Ctrl-C stops it cleanly)"
.venv/bin/edge-agent run --config "$DEMO/cameras.yaml" --duration "$SECONDS_TO_RUN" \
  --health-file "$DEMO/health.json" || true
sleep 3  # let central receive the last clips
kill "$CENTRAL" 2>/dev/null || true
echo
echo "demo: central received $(grep -c . "$DEMO/central/events.jsonl" 2>/dev/null || echo 0) event messages;"
echo "      media in $DEMO/central, the agent's last health in $DEMO/health.json"
if [ -t 0 ]; then
  echo "demo: the console stays at http://127.0.0.1:$HTTP_PORT/ (demo / $DEMO_PASSWORD); Ctrl-C ends it"
  wait "$CONSOLE" || true
fi
