"""``facemonitor engine`` and ``facemonitor broker``: the processes that serve landmarks to clients,
alone or behind a broker that spreads streams over engines on several machines."""

from __future__ import annotations

import argparse
from pathlib import Path

from calibration.scale import DEFAULT_IRIS_MM
from monitor.cli.common import add_cnn_args, cnn_options, iris_diameter, positive_float, positive_int
from monitor.engine.options import EngineLimits
from monitor.errors import UsageError

KEYS_HELP = ("folder of the CURVE keys that tcp endpoints require (default: $FACEMONITOR_KEYS, else keys/ in the "
             "user config dir; make them with `facemonitor keys`)")


def add_parser(sub) -> None:
    e = sub.add_parser("engine", help="run an engine process (e.g. on another machine)")
    e.add_argument("--bind", default="tcp://127.0.0.1:5555", help="endpoint to bind (default tcp://127.0.0.1:5555)")
    e.add_argument("--control", help="PULL endpoint on which b'STOP' stops the engine")
    e.add_argument("--backend", default="mediapipe",
                   help="landmark backend: mediapipe (default), onnx, onnx-cuda or tensorrt where they can run")
    e.add_argument("--iris-mm", type=iris_diameter, default=None,
                   help="horizontal iris diameter in mm for every stream (default 11.7)")
    e.add_argument("--parent-pid", type=positive_int, help="stop when this process ends (set by analyze/live)")
    e.add_argument("--broker", metavar="ENDPOINT",
                   help="serve a broker's engine endpoint (tcp://host:5556) instead of binding")
    e.add_argument("--keys", type=Path, default=None, help=KEYS_HELP)
    e.add_argument("--max-streams", type=positive_int, default=32, help="streams open at once; more are refused (default 32)")
    e.add_argument("--stream-idle-s", type=positive_float, default=60.0,
                   help="close a stream after this many seconds without a frame (default 60)")
    e.add_argument("--max-pixels", type=positive_int, default=EngineLimits.max_pixels,
                   help="largest frame, height x width, accepted (default 4096x4096)")
    add_cnn_args(e)
    e.set_defaults(run=run_engine_command)

    br = sub.add_parser("broker", help="run a broker that spreads clients' streams over engines on several machines")
    br.add_argument("--frontend", default="tcp://127.0.0.1:5555",
                    help="endpoint for clients (default tcp://127.0.0.1:5555)")
    br.add_argument("--backend", default="tcp://127.0.0.1:5556",
                    help="endpoint for engines (default tcp://127.0.0.1:5556)")
    br.add_argument("--keys", type=Path, default=None, help=KEYS_HELP)
    br.set_defaults(run=run_broker_command)


def run_engine_command(args: argparse.Namespace) -> int:
    from monitor.engine.run import run_engine  # lazy: zmq, cv2, numba and the landmark backend

    try:
        limits = EngineLimits(args.max_streams, args.stream_idle_s, args.max_pixels)
    except ValueError as e:
        raise UsageError(f"{e} (--max-streams, --stream-idle-s, --max-pixels)") from None
    return run_engine(args.bind, args.control, args.backend, args.iris_mm or DEFAULT_IRIS_MM, args.parent_pid,
                      cnn_options(args), broker=args.broker, limits=limits, keys_dir=args.keys)


def run_broker_command(args: argparse.Namespace) -> int:
    from monitor.transport.broker import run_broker  # lazy: zmq

    return run_broker(args.frontend, args.backend, args.keys)
