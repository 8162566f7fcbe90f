"""Options shared by several commands: the session options of analyze, live and app, the 3D-CNN
options (also the engine's), and turning parsed arguments into the typed options they stand for."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from calibration.scale import IRIS_MM_RANGE
from engines.base import check_backend
from monitor.engine.options import CnnOptions
from monitor.errors import UsageError
from monitor.session.options import SessionOptions
from monitor.store.people import check_person

# the horizontal visible iris diameter of adults lies within about 10-13 mm; a value outside 9-14 mm is a typo


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``error: --opt must be … (got …)``, and exit code 2,
    like every other error of the command line (no usage block)."""

    def error(self, message: str):
        m = re.match(r"argument (\S+?)(?:/\S+)?: (.*)", message, re.S)
        text = f"{m.group(1)} {m.group(2)}" if m and m.group(2).startswith("must be") else message
        self.exit(2, f"error: {' '.join(text.split())} (see: {self.prog} --help)\n")


# -- checked numeric option types: OneLineParser turns their ArgumentTypeError into one `error:` line, exit 2 --
def _parse(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'} (got {text!r})") \
            from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text!r})")
    return value


def number_in(lo: float | None, hi: float | None, kind: type = float, unit: str = "", *, lo_open: bool = False):
    """An argparse type: a ``kind`` (float or int) in [lo, hi] (``lo_open``: above lo); None leaves a side open."""

    def check(text: str):
        value = _parse(text, kind)
        too_low = lo is not None and (value <= lo if lo_open else value < lo)
        if too_low or (hi is not None and value > hi):
            if hi is None:
                want = f"{'above' if lo_open else 'at least'} {lo:g}{unit}"
            elif lo is None:
                want = f"at most {hi:g}{unit}"
            else:
                want = f"{lo:g}–{hi:g}{unit}"
            raise argparse.ArgumentTypeError(f"must be {want} (got {text})")
        return value

    check.__name__ = f"{kind.__name__} in range"
    return check


def float_in(lo: float, hi: float, unit: str = ""):
    return number_in(lo, hi, float, unit)


positive_float = number_in(0.0, None, float, lo_open=True)
non_negative_float = number_in(0.0, None, float)
positive_int = number_in(1, None, int)
non_negative_int = number_in(0, None, int)
port = number_in(1, 65535, int)
iris_diameter = float_in(*IRIS_MM_RANGE, " mm")
fraction = float_in(0.0, 1.0)
min_folds = number_in(2, None, int)


def add_cnn_args(sp: argparse.ArgumentParser, engine: bool = True) -> None:
    """The 3D-CNN options shared by analyze, live, app and engine."""
    sp.add_argument("--cnn", metavar="MODEL.onnx", help="also run this exported 3D-CNN (it needs its model card)")
    sp.add_argument("--cnn-stride", type=positive_int, default=32, help="frames between clips (default 32)")
    sp.add_argument("--cnn-mode", choices=("live", "all"), default=None,
                    help="live: background, newest clip wins (default for live/app); all: every clip (analyze)")
    sp.add_argument("--cnn-backend", default="onnxruntime-cpu",
                    help="onnxruntime-cpu (default), onnxruntime-cuda or tensorrt-fp16")
    sp.add_argument("--cnn-threads", type=positive_int, default=1, help="ONNX Runtime threads for the CNN (default 1)")
    if engine:
        sp.add_argument("--cnn-benchmark", action="store_true", help=argparse.SUPPRESS)


def add_session_args(sp: argparse.ArgumentParser) -> None:
    """The options of a session (store, landmark backend, engine, iris size, person, 3D-CNN): analyze,
    live and app."""
    sp.add_argument("--store", type=Path, help="store folder (default: FACEMONITOR_STORE or the user data dir)")
    sp.add_argument("--backend", default="mediapipe", help="landmark backend (default: mediapipe)")
    sp.add_argument("--engine", metavar="ENDPOINT",
                    help="use a running engine (tcp://host:port) instead of starting one")
    sp.add_argument("--iris-mm", type=iris_diameter, help="this person's horizontal iris diameter in mm (default 11.7)")
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
