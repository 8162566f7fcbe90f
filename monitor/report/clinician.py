"""What the clinician's report holds, computed (pure, apart from ``report_data`` which reads the store):
step compliance, key measures of the neutral window against the person's baseline with their spread,
the palsy estimates from performed steps only, and the person's trend.

docs/app.md ("Clinician report") describes the report page by page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from monitor.measures import schema
from monitor.measures.palsy import item_steps
from monitor.measures.summary import SessionSummary
from monitor.protocol import steps as S
from monitor.report.tables import TREND_MEASURES, TrendPoint, trend
from monitor.store.db import SessionRow, Store

PERFORMED = "done"  # the step record status of a step the person performed
KEY_COLUMNS = ("eye_aperture_left_mm", "eye_aperture_right_mm", "mrd1_left_mm", "mrd1_right_mm",
               "brow_height_left_mm", "brow_height_right_mm", "commissure_height_left_mm",
               "commissure_height_right_mm")
TREND_PANELS = ("eye_aperture_left_mm", "eye_aperture_right_mm", "mrd1_left_mm", "mrd1_right_mm")


@dataclass(frozen=True)
class ComplianceRow:
    number: int
    step: str
    status: str  # the step record's status (done, skipped, not_performed, …), "labelled" without records
    counted_s: float | None
    attempts: int | None
    quality_lost_s: float | None
    frames: int  # frames with a face analysed in the step's window


def compliance(step_records: list[dict], summary: SessionSummary | None) -> list[ComplianceRow]:
    """One row per step record (every protocol step, whatever its status); a session without records
    (a labelled recording) gets one row per labelled step."""
    steps = summary.steps if summary else {}
    if step_records:
        return [ComplianceRow(int(r.get("idx", i)) + 1, r["step"], r["status"], r.get("counted_s"), r.get("attempts"),
                              r.get("quality_lost_s"), steps[r["step"]].frames if r["step"] in steps else 0)
                for i, r in enumerate(step_records)]
    return [ComplianceRow(i, name, "not_performed" if st.performed is False else "labelled", None, None, None,
                          st.frames)
            for i, (name, st) in enumerate(steps.items(), 1) if name != "session"]


def performed_steps(step_records: list[dict], summary: SessionSummary | None) -> set[str]:
    """Steps the person performed: records with status done; without records, every labelled step its
    compliance check did not find undone."""
    if step_records:
        return {r["step"] for r in step_records if r["status"] == PERFORMED}
    return {n for n, st in (summary.steps if summary else {}).items() if st.performed is not False}


@dataclass(frozen=True)
class Spread:
    median: float
    q1: float
    q3: float
    n: int  # frames


def window_spread(table, window: str | None) -> dict[str, Spread]:
    """Median and interquartile range of each key measure over the frames with a face in a step's
    window (``window`` None: every frame with a face)."""
    if table is None or table.num_rows == 0:
        return {}
    mask = np.asarray(table.column("face").to_numpy(zero_copy_only=False), bool)
    if window is not None:
        mask &= np.array([s == window for s in table.column("step").to_pylist()], bool)
    out = {}
    for c in KEY_COLUMNS:
        if c not in table.column_names:
            continue
        x = np.asarray(table.column(c).to_numpy(zero_copy_only=False), float)[mask]
        x = x[np.isfinite(x)]
        if x.size:
            q1, med, q3 = np.percentile(x, [25, 50, 75])
            out[c] = Spread(round(float(med), 3), round(float(q1), 3), round(float(q3), 3), int(x.size))
    return out


def rest_window(table) -> str | None:
    """The neutral step when the series has one, else None (the whole session)."""
    if table is None or "step" not in table.column_names:
        return None
    return S.NEUTRAL if S.NEUTRAL in set(table.column("step").to_pylist()) else None


@dataclass(frozen=True)
class KeyMeasure:
    column: str
    label: str
    unit: str
    now: Spread | None
    baseline: float | None  # the stored baseline median
    baseline_spread: Spread | None  # the baseline session's neutral window, when its series is in the store
    change: float | None  # now − baseline (medians)
    threshold: float | None  # the tool's flag threshold in the worse direction (TREND_MEASURES)
    flagged: bool


def key_measures(now: dict[str, Spread], baseline: dict | None, baseline_spread: dict[str, Spread]) -> list[KeyMeasure]:
    out = []
    for c in KEY_COLUMNS:
        col = schema.BY_NAME[c]
        sp = now.get(c)
        base = (baseline or {}).get(c)
        base = None if base is None or not math.isfinite(base) else float(base)
        change = None if sp is None or base is None else round(sp.median - base, 3)
        m = TREND_MEASURES.get(c)
        flagged = m is not None and change is not None and m.worse * change >= m.min_change
        out.append(KeyMeasure(c, col.label, col.unit, sp, base, baseline_spread.get(c), change,
                              None if m is None else m.min_change, flagged))
    return out


def palsy_from_performed(palsy: dict | None, performed: set[str], present: set[str] | None = None) -> dict | None:
    """The eFace-style items and House–Brackmann estimate, keeping only items whose steps (those of
    its steps the session has, ``present``; all of them when not given) were all performed, neutral
    included; sub-scores re-averaged over what is kept; the House–Brackmann estimate only when every
    item it uses is kept. ``withheld`` lists the items left out."""
    ef = (palsy or {}).get("eface_estimate")
    if not ef or S.NEUTRAL not in performed:
        return None
    uses = item_steps()
    kept, withheld = {}, []
    for item, v in (ef.get("items") or {}).items():
        steps = [s for s in uses.get(item, ()) if present is None or s in present]
        if all(s in performed for s in steps):
            kept[item] = v
        else:
            withheld.append(item)

    def mean(prefix: str | None) -> float | None:
        v = [x for k, x in kept.items() if x is not None and (prefix is None or k.startswith(prefix))]
        return round(sum(v) / len(v), 1) if v else None

    hb = (palsy or {}).get("house_brackmann_estimate")
    hb_uses = ("dynamic:brow_elevation", "dynamic:oral_commissure_with_smile", "dynamic:full_eye_closure",
               "dynamic:gentle_eye_closure")
    if hb and any(k in withheld for k in hb_uses):
        hb = None
    return {"static": mean("static:"), "dynamic": mean("dynamic:"), "synkinesis": mean("synkinesis:"),
            "total": mean(None), "items": kept, "withheld": withheld, "not_measured": ef.get("not_measured", []),
            "house_brackmann": hb}


@dataclass(frozen=True)
class ReportData:
    """Everything the clinician's report shows of one session."""

    row: SessionRow
    series: object  # pyarrow.Table
    compliance: list[ComplianceRow]
    performed: set[str]
    rest_window: str | None  # "neutral", or None for the whole session
    measures: list[KeyMeasure]
    baseline_session: str | None
    baseline_at: str | None
    palsy: dict | None
    trends: dict[str, list[TrendPoint]] = field(default_factory=dict)
    notes: list[dict] = field(default_factory=list)

    @property
    def summary(self) -> SessionSummary | None:
        return self.row.summary


def _baseline(store: Store, row: SessionRow):
    """The person's baseline to compare with: the newest one kept before this session (or from it)."""
    base = store.latest_baseline(row.person)
    if base is None:
        return None, {}
    spread = {}
    if base.session_id != row.id:
        try:
            other = store.read_series(base.session_id)
            spread = window_spread(other, rest_window(other))
        except (OSError, pa.ArrowException):  # the baseline session's series is damaged: medians only
            spread = {}
    return base, spread


def report_data(store: Store, row: SessionRow) -> ReportData:
    series = store.read_series(row.id)
    records = store.steps(row.id)
    performed = performed_steps(records, row.summary)
    window = rest_window(series)
    base, base_spread = _baseline(store, row)
    history = store.list_sessions(person=row.person, limit=1000, oldest_first=True) if row.person else [row]
    history = [r for r in history if r.created_at <= row.created_at]
    trends = {c: trend(history, c, base.session_id if base else None) for c in TREND_PANELS}
    return ReportData(row, series, compliance(records, row.summary), performed, window,
                      key_measures(window_spread(series, window), base.medians if base else None, base_spread),
                      base.session_id if base else None, base.created_at if base else None,
                      palsy_from_performed(row.summary.palsy if row.summary else None, performed,
                                           set(row.summary.steps) if row.summary else None), trends,
                      store.notes(row.id))
