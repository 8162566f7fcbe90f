"""Options and helpers shared by several commands (the 3D-CNN options, session options)."""

from __future__ import annotations

import argparse


def cnn_args(sp, engine: bool = True) -> None:
    """The 3D-CNN options shared by analyze, live, app and engine."""
    sp.add_argument("--cnn", metavar="MODEL.onnx", help="also run this exported 3D-CNN (it needs its model card)")
    sp.add_argument("--cnn-stride", type=int, default=32, help="frames between clips (default 32)")
    sp.add_argument("--cnn-mode", choices=("live", "all"), default=None,
                    help="live: background, newest clip wins (default for live/app); all: every clip (analyze)")
    sp.add_argument("--cnn-backend", default="onnxruntime-cpu",
                    help="onnxruntime-cpu (default), onnxruntime-cuda or tensorrt-fp16")
    sp.add_argument("--cnn-threads", type=int, default=1, help="ONNX Runtime threads for the CNN (default 1)")
    if engine:
        sp.add_argument("--cnn-benchmark", action="store_true", help=argparse.SUPPRESS)


def cnn_options(args, mode: str = "live"):
    if not getattr(args, "cnn", None):
        return None
    from monitor.engine.options import CnnOptions
    from monitor.errors import UsageError

    if args.cnn_stride < 1 or args.cnn_threads < 1:
        raise UsageError("--cnn-stride and --cnn-threads must be at least 1")
    return CnnOptions(args.cnn, args.cnn_stride, args.cnn_mode or mode, args.cnn_backend, args.cnn_threads,
                      getattr(args, "cnn_benchmark", False))


def session_options(args, source: str, **extra):
    from monitor.session.options import SessionOptions

    return SessionOptions(source=source, store_root=args.store, backend=args.backend, engine_endpoint=args.engine,
                          iris_mm=args.iris_mm, person=args.person,
                          cnn=cnn_options(args, "all" if args.command == "analyze" else "live"), **extra)
