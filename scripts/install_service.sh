#!/usr/bin/env bash
# Install (or upgrade) edge-agent as a systemd service on a bare Debian 12 box, from this checkout.
# Run as root, after `edge-agent models fetch` (or scripts/setup.sh) has put the model in models/.
#   Code and model  /opt/edge-agent (a venv, models/)
#   Config          /etc/edge-agent/cameras.yaml, zones/<camera>.yaml, secrets (read-only to the agent)
#   Data            /var/lib/edge-agent (outbox, media store, health.json; the only writable place)
#   Logs            the journal: journalctl -u edge-agent
# An existing config is never overwritten; a new box gets deploy/cameras.yaml to edit, and the
# service is enabled but not started until `edge-agent check` accepts the config.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=/opt/edge-agent   # the unit's ExecStart names this path
CONF=/etc/edge-agent
USER_NAME=edge-agent
[ "$(id -u)" -eq 0 ] || { echo "install_service: run as root" >&2; exit 1; }
ls models/*.onnx >/dev/null 2>&1 || { echo "install_service: no models/*.onnx; run 'edge-agent models fetch' first" >&2; exit 2; }

python3 -c 'import ensurepip' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv; }
getent passwd "$USER_NAME" >/dev/null || \
  useradd --system --home-dir /var/lib/edge-agent --no-create-home --shell /usr/sbin/nologin "$USER_NAME"

[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --upgrade .
install -d "$PREFIX/models"
install -m 0644 models/models.yaml models/*.onnx "$PREFIX/models/"
install -m 0644 README.md "$PREFIX/README.md"

install -d -m 0750 -g "$USER_NAME" "$CONF" "$CONF/zones"
fresh=0
if [ ! -e "$CONF/cameras.yaml" ]; then
  install -m 0640 -g "$USER_NAME" deploy/cameras.yaml "$CONF/cameras.yaml"
  fresh=1
fi
install -m 0644 deploy/systemd/edge-agent.service /etc/systemd/system/edge-agent.service

if [ ! -d /run/systemd/system ]; then
  echo "install_service: installed; systemd is not running here, so nothing was enabled"
  exit 0
fi
systemctl daemon-reload
systemctl enable edge-agent.service
check=(runuser -u "$USER_NAME" -- env EDGE_AGENT_MODELS="$PREFIX/models" EDGE_AGENT_MANIFEST="$PREFIX/models/models.yaml" "$PREFIX/venv/bin/edge-agent" check --config "$CONF/cameras.yaml")
if [ "$fresh" = 1 ] || ! "${check[@]}"; then
  echo "install_service: edit $CONF/cameras.yaml and $CONF/zones/, check with: ${check[*]}"
  echo "install_service: then start with: systemctl start edge-agent"
else
  systemctl restart edge-agent.service
  echo "install_service: edge-agent (re)started; journalctl -u edge-agent -f"
fi
