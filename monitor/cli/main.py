"""The ``facemonitor`` command line.

Errors are one line on stderr starting with ``error:`` and exit code 2; no traceback reaches the
user (FACEMONITOR_DEBUG=1 shows it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engines.facemesh.convert import main
from monitor import (
    DISCLAIMER,
    __version__,  # noqa: F401
)
from monitor.cli.analyze import _analyze
from monitor.cli.common import cnn_args, cnn_options
from monitor.cli.sessions import _sessions
from monitor.errors import FacemonitorError

if __name__ == "__main__":
    sys.exit(main())


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facemonitor", description=f"Real-time monitor of facial weakness. {DISCLAIMER}")
    p.add_argument("--version", action="version", version=f"facemonitor {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--store", type=Path, help="store folder (default: FACEMONITOR_STORE or the user data dir)")
        sp.add_argument("--backend", default="mediapipe", help="landmark backend (default: mediapipe)")
        sp.add_argument("--engine", metavar="ENDPOINT", help="use a running engine (tcp://host:port) instead of starting one")
        sp.add_argument("--iris-mm", type=float, help="this person's horizontal iris diameter in mm (default 11.7)")
        sp.add_argument("--person", help="pseudonymous person id to file the session under")
        cnn_args(sp, engine=False)

    a = sub.add_parser("analyze", help="analyse a video file or stream into a session")
    a.add_argument("path", help="video file, rtsp/http URL, or camera index")
    a.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    a.add_argument("--realtime", action="store_true", help="read files at their own frame rate")
    a.add_argument("--max-seconds", type=float, help="stop after this much media time")
    a.add_argument("--steps", type=Path, metavar="FILE",
                   help="label a recorded protocol video: CSV lines start_s,end_s,step (see docs/measures.md)")
    common(a)

    lv = sub.add_parser("live", help="live figures from a webcam (the sample video when there is none)")
    lv.add_argument("--source", help="camera index, file or URL (default: camera 0, or the sample video if there is none)")
    lv.add_argument("--seconds", type=float, help="stop after this many seconds")
    lv.add_argument("--record", action="store_true", help="record mode: no frame dropped (default: live, newest wins)")
    lv.add_argument("--no-preview", action="store_true", help="no preview window even where a display exists")
    common(lv)

    ap = sub.add_parser("app", help="the guided check, results and review in a local web page")
    ap.add_argument("--source", help="camera index, file or URL (default: camera 0, or the sample video if there is none)")
    ap.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1; any other address requires --auth-file)")
    ap.add_argument("--protocol", default="mg24", help="mg24 (default), short, or a .toml/.json protocol file")
    ap.add_argument("--auth-file", type=Path, help="file holding user:password (required off loopback; "
                                                   "or set FACEMONITOR_APP_AUTH)")
    ap.add_argument("--tls-cert", type=Path, help="TLS certificate (PEM), for serving other devices over https")
    ap.add_argument("--tls-key", type=Path, help="TLS private key (PEM)")
    common(ap)

    b = sub.add_parser("bench", help="benchmark the pipeline on the sample video (prints ratios)")
    b.add_argument("--live-seconds", type=float, default=60.0, help="length of the live-mode run (default 60)")
    b.add_argument("--repeat", type=int, default=5, help="plays of the sample in the throughput runs (default 5)")
    b.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    b.add_argument("--store", type=Path, help="store for the benchmark sessions (default: a temporary folder)")
    b.add_argument("--app", action="store_true", help="benchmark the app's live view instead (preview fps vs input)")
    b.add_argument("--app-seconds", type=float, default=30.0, help="length of the app run (default 30)")
    b.add_argument("--cnn", action="store_true", help="benchmark the 3D-CNN instead (clip time, live rate beside the landmarks)")
    b.add_argument("--cnn-arch", default="r3d18", choices=("r3d18", "r3d34", "r3d50"))
    b.add_argument("--cnn-frames", type=int, default=64)
    b.add_argument("--cnn-size", type=int, default=112)
    b.add_argument("--cnn-stride", type=int, default=32)
    b.add_argument("--cnn-clips", type=int, default=20, help="clips timed alone (default 20)")
    b.add_argument("--streams", type=int, default=0, help="benchmark N streams on one engine instead (per-stream fps, latency)")
    b.add_argument("--backends", default="mediapipe,onnx", help="backends compared by --streams (default mediapipe,onnx)")
    b.add_argument("--stream-seconds", type=float, default=20.0, help="length of each --streams run (default 20)")

    e = sub.add_parser("engine", help="run an engine process (e.g. on another machine)")
    e.add_argument("--bind", default="tcp://127.0.0.1:5555", help="endpoint to bind (default tcp://127.0.0.1:5555)")
    e.add_argument("--control", help="PULL endpoint on which b'STOP' stops the engine")
    e.add_argument("--backend", default="mediapipe")
    e.add_argument("--iris-mm", type=float, default=None)
    e.add_argument("--parent-pid", type=int, help="stop when this process ends (set by analyze/live)")
    e.add_argument("--broker", metavar="ENDPOINT", help="serve a broker's engine endpoint (tcp://host:5556) instead of binding")
    cnn_args(e)

    br = sub.add_parser("broker", help="run a broker that spreads clients' streams over engines on several machines")
    br.add_argument("--frontend", default="tcp://127.0.0.1:5555", help="endpoint for clients (default tcp://127.0.0.1:5555)")
    br.add_argument("--backend", default="tcp://127.0.0.1:5556", help="endpoint for engines (default tcp://127.0.0.1:5556)")

    mo = sub.add_parser("models", help="the landmark networks as ONNX files (the onnx and tensorrt backends)")
    mos = mo.add_subparsers(dest="models_command", required=True)
    mx = mos.add_parser("export-onnx", help="convert face_landmarker.task's networks to ONNX and check them")
    mx.add_argument("--force", action="store_true", help="export again even if a whole export exists")
    mx.add_argument("--out", type=Path, help="folder (default: beside the cached model, keyed by its hash)")
    mx.add_argument("--frames", type=int, default=72, help="sample frames of the check against MediaPipe (default 72)")
    mi = mos.add_parser("info", help="where the exported models are, their hashes and checks")
    mi.add_argument("--dir", type=Path, help="export folder (default: beside the cached model)")

    s = sub.add_parser("sessions", help="list, show and export logged sessions")
    s.add_argument("--store", type=Path)
    ss = s.add_subparsers(dest="action", required=True)
    sl = ss.add_parser("list")
    sl.add_argument("--status", choices=("running", "complete", "incomplete", "failed"))
    sl.add_argument("--json", action="store_true")
    sh = ss.add_parser("show")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true")
    sf = ss.add_parser("fatigue", help="eyelid fatigue curves over a chosen stretch of a session")
    sf.add_argument("id")
    sf.add_argument("--from", dest="start_s", type=float, help="start, seconds into the session (default: its start)")
    sf.add_argument("--to", dest="end_s", type=float, help="end, seconds into the session (default: its end)")
    sf.add_argument("--json", action="store_true", help="print one JSON object, with the 0.5 s bins")
    sx = ss.add_parser("export")
    sx.add_argument("id")
    sx.add_argument("--format", choices=("csv", "json"), default="csv")
    sx.add_argument("--out", type=Path, help="output file (default: <id>.<format> in the current folder)")
    sx.add_argument("--landmarks", action="store_true", help="include the 478×3 landmarks (JSON only)")

    from monitor.cli.cnn import add_parser as add_cnn_parser

    add_cnn_parser(sub)

    f = sub.add_parser("fetch", help="download and verify the model and sample media now")
    f.add_argument("--all-samples", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except FacemonitorError as e:
        if os.environ.get("FACEMONITOR_DEBUG") == "1":
            raise
        return _fail(str(e))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the contract is one line, never a traceback
        if os.environ.get("FACEMONITOR_DEBUG") == "1":
            raise
        return _fail(f"{type(e).__name__}: {e} (set FACEMONITOR_DEBUG=1 for details)")


def _dispatch(args) -> int:
    if args.command == "analyze":
        return _analyze(args)
    if args.command == "live":
        from monitor.cli.live import run_live

        return run_live(args)
    if args.command == "app":
        from monitor.cli.app import run_app

        return run_app(args)
    if args.command == "bench":
        from monitor.lab.bench import run_app_bench, run_bench, run_cnn_bench, run_streams_bench

        if args.streams:
            return run_streams_bench(args)
        return run_cnn_bench(args) if args.cnn else run_app_bench(args) if args.app else run_bench(args)
    if args.command == "engine":
        from calibration.scale import DEFAULT_IRIS_MM
        from monitor.engine.run import run_engine

        return run_engine(args.bind, args.control, args.backend, args.iris_mm or DEFAULT_IRIS_MM, args.parent_pid,
                          cnn_options(args), broker=args.broker)
    if args.command == "broker":
        from monitor.transport.broker import run_broker

        return run_broker(args.frontend, args.backend)
    if args.command == "models":
        from monitor.cli.models import run_models

        return run_models(args)
    if args.command == "sessions":
        return _sessions(args)
    if args.command == "cnn":
        from monitor.cli.cnn import run as run_cnn

        return run_cnn(args)
    if args.command == "fetch":
        from engines import assets

        print(f"model: {assets.model_path()}")
        names = sorted(assets.SAMPLES) if args.all_samples else [assets.SAMPLE_VIDEO]
        for name in names:
            print(f"sample: {assets.sample_path(name)}")
        return 0
    raise AssertionError(args.command)
