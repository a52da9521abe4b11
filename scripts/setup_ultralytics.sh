#!/usr/bin/env bash
# A separate venv, .venv-ultra, with PyTorch + Ultralytics for the .pt/.engine backend and for
# making the Ultralytics golden file. Kept apart from .venv because torch is ~5.5 GB and
# ultralytics pulls opencv-python, which shares the cv2 module with opencv-python-headless.
# Safe to run again: skips the install when the venv already imports what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-ultra
PY=${PYTHON:-python3}
start=$(date +%s)

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'PYCHECK' 2>/dev/null
import importlib.metadata as md, cv2, torch, ultralytics, onnx, edge_agent  # noqa: F401
names = {d.metadata["Name"].lower() for d in md.distributions()}
raise SystemExit(1 if "opencv-python" in names else 0)
PYCHECK
then
  echo "setup_ultralytics: $VENV ready (torch, ultralytics, onnx, edge_agent)"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
# These exact releases lie on this machine's disk for Python 3.11 (a CUDA build that runs on the CPU).
"$VENV/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1
"$VENV/bin/python" -m pip install -q ultralytics onnx
# ultralytics requires opencv-python; both wheels ship cv2, so drop it and restore the headless one.
"$VENV/bin/python" -m pip uninstall -q -y opencv-python
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps opencv-python-headless
"$VENV/bin/python" -m pip install -q -e '.[dev]'
"$VENV/bin/python" -c "import cv2, torch, ultralytics; print('setup_ultralytics: torch', torch.__version__, 'ultralytics', ultralytics.__version__, 'cv2', cv2.__version__)"
echo "setup_ultralytics: done in $(( $(date +%s) - start )) s; $(du -sh "$VENV" | cut -f1) in $VENV"
