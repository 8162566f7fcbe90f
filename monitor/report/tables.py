"""Tables of results and review: per-step rows, the trend measures of a session, trends with a
deterioration flag against the person's baseline, and the document a session export holds.

Pure: summaries and step records in, rows out (``session_document`` reads them from the store). Every
figure has its unit; docs/app.md defines each one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monitor import DISCLAIMER
from monitor.measures import schema
from monitor.measures.expression import STEP_UNITS
from monitor.measures.face_model import SIDES
from monitor.measures.summary import SessionSummary, StepSummary
from monitor.protocol import steps as S
from monitor.store.db import SessionRow, Store


@dataclass(frozen=True)
class TrendMeasure:
    column: str  # a key of the summary's neutral medians, or a derived key below
    label: str
    unit: str
    worse: int  # -1: lower is worse, +1: higher is worse
    min_change: float  # a change this large in the worse direction raises the flag


def _series_trend(column: str, worse: int, min_change: float) -> TrendMeasure:
    """A trend of a series column: its label and unit from the series schema."""
    c = schema.BY_NAME[column]
    return TrendMeasure(column, c.label[0].upper() + c.label[1:], c.unit, worse, min_change)


# the tool's own thresholds, each ≥ 4× the measured still-face jitter (docs/validation.md); not clinical cut-offs
TREND_MEASURES = {m.column: m for m in (
    _series_trend("eye_aperture_left_mm", -1, 1.0),
    _series_trend("eye_aperture_right_mm", -1, 1.0),
    _series_trend("mrd1_left_mm", -1, 1.0),
    _series_trend("mrd1_right_mm", -1, 1.0),
    _series_trend("brow_height_left_mm", -1, 2.0),
    _series_trend("brow_height_right_mm", -1, 2.0),
    TrendMeasure("mouth_asymmetry_mm", "Mouth-corner height |L−R|", "mm", +1, 1.5),
    TrendMeasure("fatigue_drop_mm", "Lid drop over sustained gaze (larger eye)", "mm", +1, 1.0),
)}


def _f(v) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def step_strength(expression: dict, step: str) -> float | None:
    """Expression strength of a step, 0–1: its emotion's p95 intensity for the six emotion steps,
    else the mean p95 of the action units the step asks for; None for neutral."""
    if not expression or not expression.get("frames"):
        return None
    if step in S.EMOTIONS:
        return _f(expression["emotions_p95"][step]["both"])
    units = STEP_UNITS.get(step) or ()
    vals = []
    for u in units:
        au = expression.get("action_units_p95", {}).get(u, {})
        vals += [v for k, v in au.items() if k in ("left", "right", "both") and v is not None]
    return round(float(np.mean(vals)), 3) if vals else None


def _fatigue_drops(step: StepSummary | None) -> list[float | None]:
    """The eye-opening drop of each eye (left, right) over a step's fatigue curve, mm."""
    return [_f((step.fatigue_curve(s) or {}).get("drop_mm")) if step else None for s in SIDES]


def step_table(summary: SessionSummary | None, step_records: list[dict]) -> list[dict]:
    """One row per protocol step: how it went and its medians (mm) and expression strength (0–1)."""
    steps = summary.steps if summary else {}
    rows = []
    for rec in step_records:
        name = rec["step"]
        entry = steps.get(name) or StepSummary(0, 0.0)
        row = {"step": name, "status": rec["status"], "counted_s": rec["counted_s"], "attempts": rec["attempts"],
               "quality_lost_s": rec["quality_lost_s"], "frames": entry.frames,
               "expression_strength": step_strength(entry.expression, name)}
        for c in ("eye_aperture", "mrd1"):
            for s in SIDES:
                row[f"{c}_{s}_mm"] = _f(entry.medians.get(f"{c}_{s}_mm"))
        if entry.fatigue:
            row["fatigue_drop_left_mm"], row["fatigue_drop_right_mm"] = _fatigue_drops(entry)
        rows.append(row)
    return rows


def session_values(summary: SessionSummary | None) -> dict[str, float]:
    """The trend measures of one session: neutral medians, mouth |L−R|, the sustained-gaze lid drop."""
    if summary is None:
        return {}
    out = {}
    med = summary.neutral_medians
    for c in TREND_MEASURES:
        if c in med and _f(med[c]) is not None:
            out[c] = round(float(med[c]), 3)
    left, right = _f(med.get("commissure_height_left_mm")), _f(med.get("commissure_height_right_mm"))
    if left is not None and right is not None:
        out["mouth_asymmetry_mm"] = round(abs(left - right), 3)
    drops = []
    for name in S.SUSTAINED_GAZE:
        drops += [v for v in _fatigue_drops(summary.step(name)) if v is not None]
    if drops:
        out["fatigue_drop_mm"] = round(max(drops), 3)
    return out


@dataclass(frozen=True)
class TrendPoint:
    session_id: str
    created_at: str
    value: float
    change: float | None  # value − baseline, in the measure's unit
    flagged: bool


def trend(sessions: list[SessionRow], column: str, baseline_session: str | None = None) -> list[TrendPoint]:
    """A measure over a person's sessions (oldest first) against their baseline: the given baseline
    session, else the first session that has the measure. A point is flagged when it is worse than
    the baseline by at least the measure's min_change."""
    m = TREND_MEASURES[column]
    values = [(r, session_values(r.summary).get(column)) for r in sessions]
    values = [(r, v) for r, v in values if v is not None]
    base = next((v for r, v in values if r.id == baseline_session), None)
    if base is None and values:
        base = values[0][1]
    out = []
    for r, v in values:
        change = None if base is None else round(v - base, 3)
        out.append(TrendPoint(r.id, r.created_at, v, change,
                              change is not None and m.worse * change >= m.min_change))
    return out


def session_document(store: Store, row: SessionRow) -> dict:
    """Everything a session export holds: the session, its steps, notes, events, step table and trend values."""
    steps = store.steps(row.id)
    return {"session": row.as_dict(), "steps": steps, "notes": store.notes(row.id),
            "events": store.events(row.id), "step_table": step_table(row.summary, steps),
            "trend_values": session_values(row.summary), "disclaimer": DISCLAIMER}
