#!/usr/bin/env bash
# Install facemonitor into .venv (first time only) and run the main job: live figures from the webcam,
# or from the sample video when there is no webcam. Extra arguments go to `facemonitor live`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/facemonitor live "$@"
