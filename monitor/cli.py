"""The ``facemonitor`` command line.

Errors are one line on stderr starting with ``error:`` and exit code 2; no traceback reaches the
user (FACEMONITOR_DEBUG=1 shows it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from . import __version__, quiet  # noqa: F401
from .errors import FacemonitorError

DISCLAIMER = "facemonitor is a measurement and research tool, not a diagnostic device."


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


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
    from .engine import CnnOptions
    from .errors import UsageError

    if args.cnn_stride < 1 or args.cnn_threads < 1:
        raise UsageError("--cnn-stride and --cnn-threads must be at least 1")
    return CnnOptions(args.cnn, args.cnn_stride, args.cnn_mode or mode, args.cnn_backend, args.cnn_threads,
                      getattr(args, "cnn_benchmark", False))


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

    from .cnn.cli import add_parser as add_cnn_parser

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
        from .live import run_live

        return run_live(args)
    if args.command == "app":
        from .app_cli import run_app

        return run_app(args)
    if args.command == "bench":
        from .bench import run_app_bench, run_bench, run_cnn_bench, run_streams_bench

        if args.streams:
            return run_streams_bench(args)
        return run_cnn_bench(args) if args.cnn else run_app_bench(args) if args.app else run_bench(args)
    if args.command == "engine":
        from calibration.scale import DEFAULT_IRIS_MM

        from .engine import run_engine

        return run_engine(args.bind, args.control, args.backend, args.iris_mm or DEFAULT_IRIS_MM, args.parent_pid,
                          cnn_options(args), broker=args.broker)
    if args.command == "broker":
        from .broker import run_broker

        return run_broker(args.frontend, args.backend)
    if args.command == "models":
        from .models_cli import run_models

        return run_models(args)
    if args.command == "sessions":
        return _sessions(args)
    if args.command == "cnn":
        from .cnn.cli import run as run_cnn

        return run_cnn(args)
    if args.command == "fetch":
        from . import assets

        print(f"model: {assets.model_path()}")
        names = sorted(assets.SAMPLES) if args.all_samples else [assets.SAMPLE_VIDEO]
        for name in names:
            print(f"sample: {assets.sample_path(name)}")
        return 0
    raise AssertionError(args.command)


def session_options(args, source: str, **extra):
    from .pipeline import SessionOptions

    return SessionOptions(source=source, store_root=args.store, backend=args.backend, engine_endpoint=args.engine,
                          iris_mm=args.iris_mm, person=args.person,
                          cnn=cnn_options(args, "all" if args.command == "analyze" else "live"), **extra)


def _analyze(args) -> int:
    from .errors import SessionIncomplete
    from .pipeline import run_session

    try:
        from .steps import read_steps

        step_at = read_steps(args.steps) if args.steps else None
        result = run_session(session_options(args, args.path, realtime=args.realtime, max_seconds=args.max_seconds,
                                             step_at=step_at))
    except SessionIncomplete as e:
        if args.json and e.result is not None:
            print(json.dumps(e.result.as_json()))
        raise
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    print(format_result(result.as_json()))
    return 0


def _fmt(v, unit: str = "") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}{unit}"


def format_result(r: dict) -> str:
    lines = [f"session {r['session_id']} ({r['status']}): {r['frames']} frames, {r['frames_with_face']} with a face, "
             f"{r['processing_fps']:.1f} fps, {r['dropped_frames']} dropped"]
    s = r["summary"]
    if not s.get("face_found"):
        lines.append(s.get("message", "no face found"))
    else:
        m = s["measures"]
        for name, label in (("eye_aperture", "eye aperture"), ("mrd1", "MRD1"), ("brow_height", "brow height"),
                            ("commissure_height", "mouth corner below eye line")):
            left, right = m.get(f"{name}_left_mm"), m.get(f"{name}_right_mm")
            lines.append(f"  {label:<28} left {_fmt(left and left['median'], ' mm'):>9}   "
                         f"right {_fmt(right and right['median'], ' mm'):>9}   (median)")
    lines.append(f"series: {r['series_path']}")
    lines.append(DISCLAIMER)
    return "\n".join(lines)


def _sessions(args) -> int:
    from .store import Store

    with Store(args.store) as store:
        if args.action == "list":
            rows = store.list_sessions(args.status)
            if args.json:
                print(json.dumps([r.as_dict() for r in rows]))
                return 0
            if not rows:
                print(f"no sessions in {store.root}")
                return 0
            print(f"{'id':<23} {'status':<10} {'frames':>6} {'face':>6} {'fps':>6}  source")
            for r in rows:
                print(f"{r.id:<23} {r.status:<10} {r.frames:>6} {r.frames_with_face:>6} "
                      f"{(r.processing_fps or 0):>6.1f}  {r.source}")
            return 0
        row = store.get_session(args.id)
        if args.action == "show":
            if args.json:
                print(json.dumps(dict(row.as_dict(), events=store.events(row.id))))
                return 0
            print(format_result(dict(row.as_dict(), session_id=row.id)))
            for ev in store.events(row.id)[-10:]:
                print(f"  event {ev['at']} {ev['kind']}" + (f" frame {ev['frame']}" if ev["frame"] is not None else "")
                      + (f": {ev['detail']}" if ev["detail"] else ""))
            if row.error:
                print(f"  error: {row.error}")
            return 0
        table = store.read_series(row.id)
        if args.action == "fatigue":
            return _fatigue(row.id, table, args)
        out = args.out or Path(f"{row.id}.{args.format}")
        export_series(table, out, args.format, args.landmarks, meta=row.as_dict())
        print(f"wrote {table.num_rows} frames to {out}")
        return 0


def _fatigue(session_id: str, table, args) -> int:
    from .errors import UsageError
    from .summary import MIN_FATIGUE_S, fatigue_between

    if args.start_s is not None and args.end_s is not None and args.end_s <= args.start_s:
        raise UsageError(f"--to ({args.end_s:g} s) must come after --from ({args.start_s:g} s)")
    curves = fatigue_between(table, args.start_s, args.end_s)
    if curves is None:
        raise UsageError(f"session {session_id} has less than {MIN_FATIGUE_S:g} s with a face in that stretch; "
                         "a fatigue curve needs a baseline and an end of 3 s each")
    if args.json:
        print(json.dumps({"session_id": session_id, "from_s": args.start_s, "to_s": args.end_s, "fatigue": curves}))
        return 0
    print(f"session {session_id}, {_fmt(args.start_s, ' s') if args.start_s is not None else 'start'} to "
          f"{_fmt(args.end_s, ' s') if args.end_s is not None else 'end'}: first 3 s against last 3 s")
    print(f"  {'':<22} {'baseline':>9} {'end':>9} {'drop':>9} {'drop':>7} {'slope':>12} {'2 mm drop at':>13}")
    for side, per in curves.items():
        for m, c in per.items():
            print(f"  {side + ' ' + m.replace('_', ' '):<22} {_fmt(c['baseline_mm'], ' mm'):>9} "
                  f"{_fmt(c['end_mm'], ' mm'):>9} {_fmt(c['drop_mm'], ' mm'):>9} {_fmt(c['drop_pct'], '%'):>7} "
                  f"{_fmt(c['slope_mm_per_min'], ' mm/min'):>12} {_fmt(c['time_to_drop_s'], ' s'):>13}")
    print(DISCLAIMER)
    return 0


def export_series(table, out: Path, fmt: str, landmarks: bool, meta: dict) -> None:
    """Write a session's series as CSV (no landmarks) or JSON (session metadata + rows)."""
    import pyarrow.csv as pacsv

    tmp = out.with_name(f".{out.name}.tmp")
    if fmt == "csv":
        if "landmarks_px" in table.column_names:
            table = table.drop_columns(["landmarks_px"])
        pacsv.write_csv(table, tmp)
    else:
        if not landmarks and "landmarks_px" in table.column_names:
            table = table.drop_columns(["landmarks_px"])
        rows = table.to_pylist()
        for r in rows:
            for k, v in r.items():
                if isinstance(v, float) and math.isnan(v):
                    r[k] = None
        with open(tmp, "w") as f:
            json.dump({"session": meta, "series": rows}, f)
    os.replace(tmp, out)


if __name__ == "__main__":
    sys.exit(main())
