#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (Debian packages, venv, model, .venv-ultra), the import
# contract, then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-ultralytics --with-image-base  # .venv-ultra for the .pt backend, the image base
# The import layers (.importlinter): the pipeline reads top-down, no cycles. Module and function
# sizes are checked by tests/unit/test_check_size.py inside the suite.
.venv/bin/lint-imports
# --durations: the 25 slowest tests in the log, so the suite's 20-minute budget is watched run by run.
exec .venv/bin/python -m pytest -ra --durations=25 "$@"
