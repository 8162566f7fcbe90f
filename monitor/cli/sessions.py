"""``facemonitor sessions``: list, show and export logged sessions, and eyelid fatigue curves over a
stretch of one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engines.util import atomic_write
from monitor import DISCLAIMER
from monitor.cli.common import non_negative_float
from monitor.errors import UsageError
from monitor.report.numbers import fmt


def add_parser(sub) -> None:
    s = sub.add_parser("sessions", help="list, show and export logged sessions")
    s.add_argument("--store", type=Path, help="store folder (default: FACEMONITOR_STORE or the user data dir)")
    ss = s.add_subparsers(dest="action", required=True)
    sl = ss.add_parser("list", help="the newest 100 sessions, one line each")
    sl.add_argument("--status", choices=("running", "complete", "incomplete", "failed"),
                    help="only sessions with this status")
    sl.add_argument("--json", action="store_true", help="print one JSON list")
    sl.set_defaults(run=run_list)
    sh = ss.add_parser("show", help="one session's result, steps and last events")
    sh.add_argument("id", help="session id (a unique prefix is enough)")
    sh.add_argument("--json", action="store_true", help="print one JSON object, with every event")
    sh.set_defaults(run=run_show)
    sf = ss.add_parser("fatigue", help="eyelid fatigue curves over a chosen stretch of a session")
    sf.add_argument("id", help="session id (a unique prefix is enough)")
    sf.add_argument("--from", dest="start_s", type=non_negative_float, help="start, seconds into the session (default: its start)")
    sf.add_argument("--to", dest="end_s", type=non_negative_float, help="end, seconds into the session (default: its end)")
    sf.add_argument("--json", action="store_true", help="print one JSON object, with the 0.5 s bins")
    sf.set_defaults(run=run_fatigue)
    sx = ss.add_parser("export",
                       help="write a session's per-frame series as CSV or JSON, or its clinician report as PDF")
    sx.add_argument("id", help="session id (a unique prefix is enough)")
    sx.add_argument("--format", choices=("csv", "json", "pdf"), default="csv",
                    help="file format (default csv); pdf is the clinician report")
    sx.add_argument("--out", type=Path, help="output file (default: <id>.<format> in the current folder)")
    sx.add_argument("--landmarks", action="store_true", help="include the 478×3 landmarks (JSON only)")
    sx.set_defaults(run=run_export)


def _store(args: argparse.Namespace):
    """The store named by ``--store`` (or the default one), to use as a context manager."""
    from monitor.store.db import Store  # lazy: pyarrow, numba (the store reads summaries and series)

    return Store(args.store)


def run_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
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
                  f"{fmt(r.processing_fps):>6}  {r.source}")  # photos have no frame rate: –
        return 0


def run_show(args: argparse.Namespace) -> int:
    from monitor.report.text import format_result  # lazy: numba, pyarrow (the measures summary)

    with _store(args) as store:
        row = store.get_session(args.id)
        events = store.events(row.id)
        steps = store.steps(row.id)  # the app's step records (status, start, end), when it ran a protocol
    if args.json:
        print(json.dumps(dict(row.as_dict(), events=events)))
        return 0
    spans = [{"step": s["step"], "status": s["status"], "start_s": s["started_s"], "end_s": s["ended_s"]}
             for s in steps] or None
    print(format_result(dict(row.as_dict(), session_id=row.id), spans))
    for ev in events[-10:]:
        print(f"  event {ev['at']} {ev['kind']}" + (f" frame {ev['frame']}" if ev["frame"] is not None else "")
              + (f": {ev['detail']}" if ev["detail"] else ""))
    if row.error:
        print(f"  error: {row.error}")
    return 0


def _session_and_series(args: argparse.Namespace):
    """The session named by ``args.id`` (an id prefix is enough) and its per-frame series."""
    with _store(args) as store:
        row = store.get_session(args.id)
        return row, store.read_series(row.id)


def run_export(args: argparse.Namespace) -> int:
    from monitor.report.writers import export_series  # lazy: pyarrow, numba (the report tables)

    if args.format == "pdf":
        return _export_pdf(args)
    row, table = _session_and_series(args)
    out = args.out or Path(f"{row.id}.{args.format}")
    export_series(table, out, args.format, args.landmarks, meta=row.as_dict())
    print(f"wrote {table.num_rows} frames to {out}")
    return 0


def _export_pdf(args: argparse.Namespace) -> int:
    from monitor.report.pdf import pdf_report  # lazy: matplotlib (the report's pages)

    with _store(args) as store:
        row = store.get_session(args.id)
        out = args.out or Path(f"{row.id}.pdf")
        atomic_write(out, pdf_report(store, row))
    print(f"wrote the clinician report of session {row.id} to {out}")
    return 0


def _face_span_s(table, start_s: float | None, end_s: float | None) -> float:
    """Seconds from the first to the last frame with a face in [start_s, end_s]."""
    t = [ti for ti, face in zip(table.column("t_s").to_pylist(), table.column("face").to_pylist())
         if face and (start_s is None or ti >= start_s) and (end_s is None or ti <= end_s)]
    return max(t) - min(t) if len(t) >= 2 else 0.0


def run_fatigue(args: argparse.Namespace) -> int:
    from monitor.measures.summary import MIN_FATIGUE_S, fatigue_between  # lazy: numba kernels, pyarrow

    row, table = _session_and_series(args)
    if args.start_s is not None and args.end_s is not None and args.end_s <= args.start_s:
        raise UsageError(f"--to ({args.end_s:g} s) must come after --from ({args.start_s:g} s)")
    curves = fatigue_between(table, args.start_s, args.end_s)
    if curves is None:
        raise UsageError(f"session {row.id} has {_face_span_s(table, args.start_s, args.end_s):.1f} s with a face "
                         f"in that stretch, less than {MIN_FATIGUE_S:g} s: a fatigue curve needs at least "
                         f"{MIN_FATIGUE_S:g} s (a 3 s baseline and a 3 s end)")
    if args.json:
        print(json.dumps({"session_id": row.id, "from_s": args.start_s, "to_s": args.end_s, "fatigue": curves}))
        return 0
    start = fmt(args.start_s, " s") if args.start_s is not None else "start"
    end = fmt(args.end_s, " s") if args.end_s is not None else "end"
    print(f"session {row.id}, {start} to {end}: first 3 s against last 3 s "
          "(drop and drop rate are positive when the lid lowers)")
    print(f"  {'':<22} {'baseline':>9} {'end':>9} {'drop':>9} {'drop':>7} {'drop rate':>12} {'2 mm drop at':>13}")
    for side, per in curves.items():
        for m, c in per.items():
            print(f"  {side + ' ' + m.replace('_', ' '):<22} {fmt(c['baseline_mm'], ' mm'):>9} "
                  f"{fmt(c['end_mm'], ' mm'):>9} {fmt(c['drop_mm'], ' mm'):>9} {fmt(c['drop_pct'], '%'):>7} "
                  f"{fmt(c['drop_rate_mm_per_min'], ' mm/min'):>12} {fmt(c['time_to_drop_s'], ' s'):>13}")
    if any(c["drop_pct"] is None and c["drop_mm"] is not None for per in curves.values() for c in per.values()):
        print("  drop % is left out (—) where the baseline is under 1 mm")
    print(DISCLAIMER)
    return 0
