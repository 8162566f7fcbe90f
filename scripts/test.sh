#!/usr/bin/env bash
# Install facemonitor with its test tools into .venv (first time only) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
FACEMONITOR_EXTRAS=dev bash scripts/install.sh
exec .venv/bin/python -m pytest -q "$@"
