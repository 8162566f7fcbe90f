"""``facemonitor analyze``: a video file, photo, palsy photo set, stream or camera into a new session, its
result printed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engines.util import process_age_s
from monitor.cli.common import add_session_args, positive_float, session_options
from monitor.errors import SessionIncomplete, UsageError
from monitor.protocol.steps import read_steps

# below the engine's stream idle expiry (--stream-idle-s, default 60 s), so a waiting session keeps its stream
MAX_SOURCE_TIMEOUT_S = 50.0


def add_parser(sub) -> None:
    a = sub.add_parser("analyze", help="analyse a video file or stream into a session")
    a.add_argument("path", nargs="?", help="video file, photo, rtsp/http URL, or camera index")
    a.add_argument("--photo-set", nargs="+", metavar="DIR|FILE",
                   help="a facial-palsy photo set (a folder, photos named after their poses, or a poses.json/.csv "
                        "manifest) into one session with a step per pose (see docs/measures.md)")
    a.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    a.add_argument("--realtime", action="store_true", help="read files at their own frame rate")
    a.add_argument("--max-seconds", type=positive_float, help="stop after this much media time")
    a.add_argument("--source-timeout", type=float, default=30.0, metavar="S",
                   help="give up on a camera or stream after S seconds without a frame, reconnecting meanwhile (default 30)")
    a.add_argument("--steps", type=Path, metavar="FILE",
                   help="label a recorded protocol video: CSV lines start_s,end_s,step (see docs/measures.md)")
    add_session_args(a)
    a.set_defaults(run=run_analyze)


def run_analyze(args: argparse.Namespace) -> int:
    if not 0 < args.source_timeout <= MAX_SOURCE_TIMEOUT_S:
        raise UsageError(f"--source-timeout must be above 0 and at most {MAX_SOURCE_TIMEOUT_S:.0f} seconds "
                         f"(the engine closes a stream idle for 60 s), not {args.source_timeout}")
    if args.photo_set is not None:
        return run_photo_set_command(args)
    if args.path is None:
        raise UsageError("analyze needs a PATH (video file, photo, URL or camera index) or --photo-set")
    step_at = read_steps(args.steps) if args.steps else None
    opts = session_options(args, args.path, cnn_mode="all", realtime=args.realtime, max_seconds=args.max_seconds,
                           step_at=step_at, source_timeout_s=args.source_timeout)
    engine = start_engine_early(opts)
    format_result, run_session = load_session_stack(engine)
    age_s = process_age_s()
    try:
        result = run_session(opts, engine)  # stops the engine, however it ends
    except SessionIncomplete as e:
        if args.json and e.result is not None:
            print(json.dumps(_with_start_up(e.result, age_s)))
        raise
    spans = [{"step": s.step, "start_s": s.start_s, "end_s": s.end_s} for s in step_at.spans] if step_at else None
    out = result.as_json()
    if spans is not None:  # the labelled steps, each with its compliance check (docs/measures.md)
        out["steps"] = [dict(span, **_checked(result.summary.step(span["step"]))) for span in spans]
    print(json.dumps(_with_start_up(result, age_s, out)) if args.json else format_result(out, spans))
    return 0


def _checked(step) -> dict:
    """A labelled step's record: performed (None when not checked or without frames) and why."""
    if step is None:
        return {"performed": None, "reason": "no frames with a face in this step"}
    return {"performed": step.performed, "reason": step.compliance.reason if step.compliance else ""}


def _with_start_up(result, age_s: float | None, out: dict | None = None) -> dict:
    """The session's JSON (``out``, else ``result.as_json()``) with ``first_result_s``: seconds from
    this process's start to the first result (what a user waits; ``bench --whole-process`` reads it)."""
    out = result.as_json() if out is None else out
    if result.first_result_s is not None and age_s is not None:
        out["first_result_s"] = round(age_s + result.first_result_s, 3)
    return out


def load_session_stack(engine):
    """``format_result`` and ``run_session``, imported while an early engine starts; the engine is
    stopped when the import fails (or is interrupted)."""
    try:
        from monitor.report.text import format_result  # lazy: numba, pyarrow (the measures summary)
        from monitor.session.run import run_session  # lazy: numba, cv2 and zmq load only for commands that analyse
    except BaseException:
        if engine is not None:
            engine.stop()
        raise
    return format_result, run_session


def start_engine_early(opts):
    """The session's local engine, started before this process loads the session stack (numba,
    pyarrow, cv2: seconds on a slow machine), so that the two start-ups overlap; None when something
    only the store knows could change the engine's command line (a person's iris diameter), with a
    3D-CNN, or with a running engine."""
    if opts.engine_endpoint or opts.person or opts.cnn is not None:
        return None
    from monitor.engine.local import LocalEngine  # lazy: zmq loads only for commands that analyse

    return LocalEngine(opts.backend, opts.iris_mm)


def run_photo_set_command(args: argparse.Namespace) -> int:
    """``analyze --photo-set``: the photos checked and named by pose, then one session."""
    from monitor.capture.photo_set import find_photo_set  # lazy: cv2 loads only for commands that analyse
    from monitor.report.photos import format_photo_set  # lazy: numba, pyarrow (the measures summary)
    from monitor.session.run import run_photo_set  # lazy: numba, cv2 and zmq load only for commands that analyse

    if args.path is not None:
        raise UsageError(f"give either PATH or --photo-set, not both (got {args.path})")
    if args.steps or args.realtime or args.max_seconds is not None:
        raise UsageError("--steps, --realtime and --max-seconds do not apply to a photo set (its poses are its steps)")
    photos = find_photo_set(args.photo_set)
    opts = session_options(args, photos.source, cnn_mode="all")
    try:
        result = run_photo_set(opts, photos)
    except SessionIncomplete as e:
        if e.result is not None:
            print(json.dumps(e.result.as_json()) if args.json else format_photo_set(e.result.as_json()))
        raise
    print(json.dumps(result.as_json()) if args.json else format_photo_set(result.as_json()))
    return 0
