"""``facemonitor cohort``: analyse a folder or manifest of recordings, tabulate a cohort, compare groups."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from monitor import DISCLAIMER
from monitor.cli.common import iris_diameter, positive_int
from monitor.errors import UsageError


def add_parser(sub) -> None:
    c = sub.add_parser("cohort", help="analyse a whole cohort of recordings; tables and group comparisons")
    cs = c.add_subparsers(dest="cohort_command", required=True)
    a = cs.add_parser("analyze", help="every video or photo of a folder or manifest CSV into a session (resumable)")
    a.add_argument("source", type=Path, help="a folder of recordings, or a manifest CSV (path,subject,steps_file,label,…)")
    a.add_argument("--workers", type=positive_int, help="worker processes, each with its own engine (default: every core)")
    a.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster at ADDRESS, or 'local' for a Ray runtime "
                                                   "on this machine (needs the cohort extra)")
    a.add_argument("--cohort", dest="cohort_id", help="the cohort's name (default: the source's name and a hash of "
                                                      "its path); a re-run of the same cohort skips what is done")
    a.add_argument("--store", type=Path, help="store folder (default: FACEMONITOR_STORE or the user data dir)")
    a.add_argument("--backend", default="mediapipe", help="landmark backend (default: mediapipe)")
    a.add_argument("--iris-mm", type=iris_diameter, help="horizontal iris diameter in mm for every recording (default 11.7)")
    a.add_argument("--json", action="store_true", help="print one JSON summary at the end (no progress bar)")
    a.set_defaults(run=run_analyze)
    t = cs.add_parser("table", help="one row per recording (and --subjects: per subject) with session-level measures")
    t.add_argument("cohort_id", metavar="COHORT", help="the cohort's name (as cohort analyze printed it)")
    t.add_argument("--out", type=Path, help="write FILE.csv or FILE.parquet (default: CSV on stdout)")
    t.add_argument("--subjects", action="store_true", help="one row per subject: the mean of its recordings")
    t.add_argument("--store", type=Path, help="store folder")
    t.set_defaults(run=run_table)
    cp = cs.add_parser("compare", help="per measure: group n, mean, SD and a rank test (Mann-Whitney U / Kruskal-Wallis)")
    cp.add_argument("cohort_id", metavar="COHORT", help="the cohort's name (as cohort analyze printed it)")
    cp.add_argument("--by", default="label", help="the label column that names the groups (default: label)")
    cp.add_argument("--subjects", action="store_true", help="compare subjects (means of their recordings), not recordings")
    cp.add_argument("--store", type=Path, help="store folder")
    cp.add_argument("--json", action="store_true", help="print the comparison as JSON")
    cp.set_defaults(run=run_compare)


def run_analyze(args) -> int:
    from monitor.lab.cohort.run import CohortOptions, run_cohort  # lazy: numba, cv2 and zmq load only to analyse

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.iris_mm is not None and not 5.0 <= args.iris_mm <= 20.0:
        raise UsageError(f"--iris-mm must be between 5 and 20 mm, got {args.iris_mm:g}")
    opts = CohortOptions(args.source, args.store, args.cohort_id, args.workers, args.ray, args.backend, args.iris_mm,
                         progress=not args.json and sys.stderr.isatty())
    report = run_cohort(opts, log=(lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr)))
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        print(f"cohort {report.cohort_id} ({report.executor}): {len(report.done)} done, {len(report.failed)} failed, "
              f"{len(report.skipped)} skipped; {report.frames} frames in {report.seconds:.1f} s "
              f"({report.frames_per_s:.1f} frames/s); store {report.store}")
        for out in report.failed:
            print(f"  {out['status']:<10} {out['key']}: {out['error']}")
        print(DISCLAIMER)
    return 1 if report.failed else 0


def _rows(args) -> list[dict]:
    from monitor.lab.cohort.table import recording_rows, subject_rows  # lazy: numpy and pyarrow
    from monitor.store.db import Store  # lazy: pyarrow and the measures load with the store

    with Store(args.store) as store:
        rows = recording_rows(store, args.cohort_id)
    return subject_rows(rows) if args.subjects else rows


def run_table(args) -> int:
    from monitor.lab.cohort.table import write_table  # lazy: pyarrow

    rows = _rows(args)
    if args.out:
        write_table(rows, args.out)
        print(f"wrote {len(rows)} rows to {args.out}")
        return 0
    columns = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(sys.stdout, columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return 0


def run_compare(args) -> int:
    from monitor.lab.cohort.table import compare  # lazy: scipy and numpy

    result = compare(_rows(args), args.by)
    if args.json:
        print(json.dumps(result))
        return 0
    groups = list(result["groups"])
    print(f"by {result['by']}: " + ", ".join(f"{g} n={n}" for g, n in result["groups"].items()) + f"; {result['test']}")
    print(f"{'measure':<48} " + " ".join(f"{g[:18]:>22}" for g in groups) + f" {'p':>8}")
    for m, e in result["measures"].items():
        cells = []
        for g in groups:
            s = e["groups"][g]
            cells.append("—" if s["mean"] is None else f"{s['mean']:.3g} ± {s['sd']:.2g}" if s["sd"] is not None
                         else f"{s['mean']:.3g}")
        p = "—" if e["p"] is None else f"{e['p']:.3g}"
        print(f"{m[:48]:<48} " + " ".join(f"{c:>22}" for c in cells) + f" {p:>8}")
    print("Group differences are descriptive; many measures are compared, so p-values are not corrected. " + DISCLAIMER)
    return 0
