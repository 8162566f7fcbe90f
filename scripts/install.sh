#!/usr/bin/env bash
# Create .venv and install the project with the extras named in $FACEMONITOR_EXTRAS (default: none).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras=${FACEMONITOR_EXTRAS:-}
spec="."
[ -n "$extras" ] && spec=".[$extras]"
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras:-core}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
  touch "$stamp"
fi
# fetch and verify the model and sample video now, so the first run does not wait on the network
.venv/bin/facemonitor fetch >/dev/null
