#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (Debian packages, venv, model, .venv-ultra), then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-ultralytics  # the .pt backend's tests need .venv-ultra
exec .venv/bin/python -m pytest -ra "$@"
