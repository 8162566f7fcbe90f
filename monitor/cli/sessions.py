"""``facemonitor sessions``: list, show, export logged sessions, and fatigue curves over a stretch."""

from __future__ import annotations

import json
from pathlib import Path

from monitor import DISCLAIMER
from monitor.report.text import fmt as _fmt, format_result
from monitor.report.writers import export_series


def _sessions(args) -> int:
    from monitor.store.db import Store

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
    from monitor.errors import UsageError
    from monitor.measures.summary import MIN_FATIGUE_S, fatigue_between

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
