"""``facemonitor analyze``: a video file, stream or camera into a new session, its result printed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from monitor.cli.common import add_session_args, positive_float, session_options
from monitor.errors import SessionIncomplete
from monitor.protocol.steps import read_steps


def add_parser(sub) -> None:
    a = sub.add_parser("analyze", help="analyse a video file or stream into a session")
    a.add_argument("path", help="video file, rtsp/http URL, or camera index")
    a.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    a.add_argument("--realtime", action="store_true", help="read files at their own frame rate")
    a.add_argument("--max-seconds", type=positive_float, help="stop after this much media time")
    a.add_argument("--steps", type=Path, metavar="FILE",
                   help="label a recorded protocol video: CSV lines start_s,end_s,step (see docs/measures.md)")
    add_session_args(a)
    a.set_defaults(run=run_analyze)


def run_analyze(args: argparse.Namespace) -> int:
    from monitor.report.text import format_result  # lazy: numba, pyarrow (the measures summary)
    from monitor.session.run import run_session  # lazy: numba, cv2 and zmq load only for commands that analyse

    step_at = read_steps(args.steps) if args.steps else None
    opts = session_options(args, args.path, cnn_mode="all", realtime=args.realtime, max_seconds=args.max_seconds,
                           step_at=step_at)
    try:
        result = run_session(opts)
    except SessionIncomplete as e:
        if args.json and e.result is not None:
            print(json.dumps(e.result.as_json()))
        raise
    print(json.dumps(result.as_json()) if args.json else format_result(result.as_json()))
    return 0
