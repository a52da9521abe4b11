#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (Debian packages, venv, model), then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -ra "$@"
