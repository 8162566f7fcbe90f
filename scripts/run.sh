#!/usr/bin/env bash
# Install facemonitor into .venv (first time only) and run the main job: live figures from the webcam,
# or from the sample video when there is no webcam. Extra arguments go to `facemonitor live`;
# `bash scripts/run.sh app [ARGS]` starts the guided-check web app instead (http://127.0.0.1:7860/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if [ "${1:-}" = "app" ]; then
  shift
  exec .venv/bin/facemonitor app "$@"
fi
exec .venv/bin/facemonitor live "$@"
