#!/usr/bin/env bash
# One-command GPU check: on a machine with an NVIDIA GPU, install the GPU extra, build the TensorRT engines
# (cached), check the GPU backends against ONNX Runtime on the CPU, and measure landmark streams (1, 8, 32,
# 64) and the 3D-CNN (clips/s at batch 1 and 16), all within 8 minutes; the figures go to gpu_check.json
# and gpu_check.md in FOLDER (default: $OUT, else ./gpu-check). Without a GPU it says so and exits 0.
# Usage: bash scripts/gpu_check.sh [FOLDER]   (docs/performance.md, "GPU check")
# Offline machines: PIP_NO_INDEX=1 PIP_FIND_LINKS=/path/to/wheels, and FACEMONITOR_CACHE_DIR=/path/to/a/copy
# of the cache (face_landmarker.task, single_face.mp4, onnx/).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=python3
if [ -x .venv/bin/python ] && .venv/bin/python -c "" 2>/dev/null; then
  PY=.venv/bin/python
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
args=()
[ -n "${1:-}" ] && args=(--out "$1")
exec "$PY" -m monitor.lab.gpu_check "${args[@]}"
