"""Options shared by several commands: the session options of analyze, live and app, the 3D-CNN
options (also the engine's), and turning parsed arguments into the typed options they stand for."""

from __future__ import annotations

import argparse
from pathlib import Path

from engines.base import check_backend
from monitor.engine.options import CnnOptions
from monitor.errors import UsageError
from monitor.session.options import SessionOptions
from monitor.store.people import check_person


def add_cnn_args(sp: argparse.ArgumentParser, engine: bool = True) -> None:
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


def add_session_args(sp: argparse.ArgumentParser) -> None:
    """The options of a session (store, landmark backend, engine, iris size, person, 3D-CNN): analyze,
    live and app."""
    sp.add_argument("--store", type=Path, help="store folder (default: FACEMONITOR_STORE or the user data dir)")
    sp.add_argument("--backend", default="mediapipe", help="landmark backend (default: mediapipe)")
    sp.add_argument("--engine", metavar="ENDPOINT",
                    help="use a running engine (tcp://host:port) instead of starting one")
    sp.add_argument("--iris-mm", type=float, help="this person's horizontal iris diameter in mm (default 11.7)")
    sp.add_argument("--person", help="pseudonymous person id to file the session under")
    add_cnn_args(sp, engine=False)


def cnn_options(args: argparse.Namespace, mode: str = "live") -> CnnOptions | None:
    """The 3D-CNN options given on the command line, or None without ``--cnn``; ``mode`` is the default
    for ``--cnn-mode``."""
    if not getattr(args, "cnn", None):
        return None
    if args.cnn_stride < 1 or args.cnn_threads < 1:
        raise UsageError("--cnn-stride and --cnn-threads must be at least 1")
    return CnnOptions(args.cnn, args.cnn_stride, args.cnn_mode or mode, args.cnn_backend, args.cnn_threads,
                      getattr(args, "cnn_benchmark", False))


def session_options(args: argparse.Namespace, source: str, cnn_mode: str = "live", **extra) -> SessionOptions:
    """The options of one session from the shared session arguments; ``extra`` are further
    SessionOptions fields (mode, realtime, hooks). A ``--person`` that is not a pseudonym is refused
    here, before an engine starts."""
    if args.person is not None:
        check_person(args.person)
    if args.engine is None:  # a local engine: refuse a backend that cannot run here before starting it
        check_backend(args.backend)
    return SessionOptions(source=source, store_root=args.store, backend=args.backend, engine_endpoint=args.engine,
                          iris_mm=args.iris_mm, person=args.person, cnn=cnn_options(args, cnn_mode), **extra)
