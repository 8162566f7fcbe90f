"""``facemonitor bench``: benchmark the pipeline, the app's live view, the 3D-CNN or several streams on
one engine, on the sample video."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.cli.common import non_negative_int, positive_float, positive_int


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="benchmark the pipeline on the sample video (prints ratios)")
    b.add_argument("--live-seconds", type=positive_float, default=60.0, help="length of the live-mode run (default 60)")
    b.add_argument("--repeat", type=positive_int, default=5, help="plays of the sample in the throughput runs (default 5)")
    b.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    b.add_argument("--store", type=Path, help="store for the benchmark sessions (default: a temporary folder)")
    b.add_argument("--app", action="store_true", help="benchmark the app's live view instead (preview fps vs input)")
    b.add_argument("--app-seconds", type=positive_float, default=30.0, help="length of the app run (default 30)")
    b.add_argument("--cnn", action="store_true",
                   help="benchmark the 3D-CNN instead (clip time, live rate beside the landmarks)")
    b.add_argument("--cnn-arch", default="r3d18", choices=("r3d18", "r3d34", "r3d50"),
                   help="with --cnn: the 3D ResNet depth timed (default r3d18)")
    b.add_argument("--cnn-frames", type=positive_int, default=64, help="with --cnn: frames per clip (default 64)")
    b.add_argument("--cnn-size", type=positive_int, default=112, help="with --cnn: crop size in pixels (default 112)")
    b.add_argument("--cnn-stride", type=positive_int, default=32, help="with --cnn: frames between clips (default 32)")
    b.add_argument("--cnn-clips", type=positive_int, default=20, help="clips timed alone (default 20)")
    b.add_argument("--streams", type=non_negative_int, default=0,
                   help="benchmark N streams on one engine instead (per-stream fps, latency)")
    b.add_argument("--backends", default="mediapipe,onnx",
                   help="backends compared by --streams (default mediapipe,onnx)")
    b.add_argument("--stream-seconds", type=positive_float, default=20.0, help="length of each --streams run (default 20)")
    b.add_argument("--cohort", action="store_true",
                   help="benchmark cohort analysis instead: 1 and 2 local workers and --ray local, as ratios")
    b.add_argument("--cohort-recordings", type=positive_int, default=6, help="copies of the sample in the cohort (default 6)")
    b.add_argument("--gpu", action="store_true",
                   help="the one-command GPU check instead (install, TensorRT engines, parity, streams, 3D-CNN; "
                        "8 minutes; without an NVIDIA GPU it says so and exits 0)")
    b.add_argument("--gpu-out", type=Path, help="with --gpu: folder for gpu_check.json/.md (default $OUT, else ./gpu-check)")
    b.add_argument("--whole-process", action="store_true",
                   help="benchmark analyze as users run it instead: whole processes per backend (--backends) "
                        "beside MediaPipe alone, wall, CPU, fps and time to first result, as ratios")
    b.add_argument("--whole-frames", type=positive_int, default=900,
                   help="with --whole-process: frames of the video analysed (the sample played over; default 900)")
    b.add_argument("--whole-repeats", type=positive_int, default=3,
                   help="with --whole-process: runs of each, for min / median / max (default 3)")
    b.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """--gpu, else --whole-process, else --streams, else --cohort, else --cnn, else --app, else the pipeline
    benchmark."""
    if args.gpu:
        from monitor.lab import gpu_check  # lazy: keeps the no-GPU answer instant (no numpy, cv2, zmq)

        return gpu_check.run(args.gpu_out)
    if args.whole_process:
        from monitor.lab.bench_whole import run_whole_process_bench  # lazy: numpy, cv2, mediapipe

        return run_whole_process_bench(args)
    from monitor.lab import bench  # lazy: numba, cv2, zmq, pyarrow (sessions, engines and the app)

    if args.streams:
        return bench.run_streams_bench(args)
    if args.cohort:
        return bench.run_cohort_bench(args)
    if args.cnn:
        return bench.run_cnn_bench(args)
    return bench.run_app_bench(args) if args.app else bench.run_bench(args)
