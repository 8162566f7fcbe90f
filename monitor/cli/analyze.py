"""``facemonitor analyze``: a video file, stream or camera into a new session."""

from __future__ import annotations

import json

from monitor.cli.common import session_options
from monitor.report.text import format_result


def _analyze(args) -> int:
    from monitor.errors import SessionIncomplete
    from monitor.session.run import run_session

    try:
        from monitor.protocol.steps import read_steps

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
