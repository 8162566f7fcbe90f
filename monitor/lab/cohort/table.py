"""A cohort as tables for statistics: one row per recording and one per subject, and group comparisons.

Recording rows flatten each session's stored summary (SessionSummary): per step, the action units
and emotions at the 95th percentile (as the MG study analysed its expression software's output),
the eye-opening and MRD1 medians; the fatigue figures of each eye over the sustained steps; the
static asymmetry at rest and the asymmetry index. Subject rows are the mean of their recordings'
numbers. ``compare`` gives, per measure, each group's n, mean and SD and a rank test between the
groups (Mann–Whitney U for two, Kruskal–Wallis for more; scipy).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from engines.util import atomic_path
from monitor.errors import UsageError
from monitor.measures.summary import SessionSummary
from monitor.store.cohorts import CohortItemRow, CohortLedger
from monitor.store.db import Store

ID_COLUMNS = ("cohort", "subject", "recording", "session_id", "status", "frames", "frames_with_face")
FATIGUE_FIGURES = ("drop_mm", "slope_mm_per_min", "time_to_drop_s", "baseline_mm")


def summary_measures(summary: SessionSummary | None) -> dict[str, float]:
    """The numbers of one session's summary, flat: ``<step>.<measure>`` → value."""
    out: dict[str, float] = {}
    if summary is None or not summary.face_found:
        return out
    for name, step in summary.steps.items():
        for col, v in step.medians.items():
            out[f"{name}.{col}"] = v
        expr = step.expression or {}
        for au, sides in (expr.get("action_units_p95") or {}).items():
            for side, v in sides.items():
                if side in ("left", "right", "both"):
                    out[f"{name}.{au}_p95_{side}"] = v
        for emo, sides in (expr.get("emotions_p95") or {}).items():
            out[f"{name}.{emo}_p95"] = sides.get("both")
        for side, per in (step.fatigue or {}).items():
            for measure, curve in per.items():
                for fig in FATIGUE_FIGURES:
                    out[f"{name}.fatigue_{measure}_{side}_{fig}"] = curve.get(fig)
    for key, c in (summary.asymmetry.get("static") or {}).items():
        out[f"rest.asymmetry_{key}_abs_diff"] = c.get("abs_diff")
    index = summary.asymmetry.get("index") or {}
    out["asymmetry_index_pct"] = index.get("index_pct")
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def recording_rows(store: Store, cohort_id: str) -> list[dict]:
    ledger = CohortLedger(store)
    if ledger.get_cohort(cohort_id) is None:
        known = ", ".join(c["id"] for c in ledger.cohorts()) or "none"
        raise UsageError(f"no cohort {cohort_id!r} in {store.root} (cohorts: {known})")
    return [_row(store, cohort_id, item) for item in ledger.items(cohort_id)]


def _row(store: Store, cohort_id: str, item: CohortItemRow) -> dict:
    row = {"cohort": cohort_id, "subject": item.subject, "recording": item.path, "session_id": item.session_id,
           "status": item.status, "frames": item.frames, "frames_with_face": None, **item.labels}
    if item.session_id:
        session = store.get_session(item.session_id)
        row["frames_with_face"] = session.frames_with_face
        row.update(summary_measures(session.summary))
    return row


def subject_rows(rows: list[dict]) -> list[dict]:
    """One row per subject: the mean of each number over its complete recordings; labels kept when
    the subject's recordings agree on them."""
    by_subject: dict[str, list[dict]] = {}
    for r in rows:
        if r["status"] == "complete":
            by_subject.setdefault(r["subject"] or "", []).append(r)
    out = []
    for subject, rs in sorted(by_subject.items()):
        row = {"subject": subject, "recordings": len(rs)}
        keys = dict.fromkeys(k for r in rs for k in r if k not in ID_COLUMNS)
        for k in keys:
            values = [r.get(k) for r in rs]
            nums = [v for v in values if isinstance(v, float) and math.isfinite(v)]
            if nums:
                row[k] = float(np.mean(nums))
            elif len({str(v) for v in values}) == 1 and values[0] is not None:
                row[k] = values[0]
        out.append(row)
    return out


def write_table(rows: list[dict], out: Path) -> Path:
    """CSV or Parquet by the file's suffix (written atomically)."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = pa.table({c: [r.get(c) for r in rows] for c in columns})
    suffix = Path(out).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UsageError(f"{out}: the table is written as .csv or .parquet")
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            pacsv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp)
    return Path(out)


def compare(rows: list[dict], by: str) -> dict:
    """Per measure: each group's n, mean and SD, and the rank test between the groups."""
    from scipy import stats  # lazy: scipy only for a comparison

    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r.get(by) not in (None, ""):
            groups.setdefault(str(r[by]), []).append(r)
    if len(groups) < 2:
        raise UsageError(f"comparing by {by!r} needs at least two groups; found {sorted(groups) or 'none'}")
    measures = sorted({k for r in rows for k, v in r.items() if isinstance(v, float) and k not in ID_COLUMNS})
    test = "Mann-Whitney U" if len(groups) == 2 else "Kruskal-Wallis"
    out = {"by": by, "groups": {g: len(rs) for g, rs in groups.items()}, "test": test, "measures": {}}
    for m in measures:
        samples = {g: [v for r in rs if isinstance(v := r.get(m), float) and math.isfinite(v)] for g, rs in groups.items()}
        entry = {g: {"n": len(x), "mean": float(np.mean(x)) if x else None,
                     "sd": float(np.std(x, ddof=1)) if len(x) > 1 else None} for g, x in samples.items()}
        usable = [x for x in samples.values() if len(x) >= 1]
        p = None
        if len(usable) == len(samples) and sum(len(x) for x in usable) > len(usable):
            try:
                res = stats.mannwhitneyu(*usable) if len(usable) == 2 else stats.kruskal(*usable)
                p = float(res.pvalue) if math.isfinite(res.pvalue) else None
            except ValueError:  # all values identical
                p = None
        out["measures"][m] = {"groups": entry, "p": p}
    return out
