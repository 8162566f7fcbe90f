"""Step compliance: did the person do what a protocol step asked? (pure; docs/measures.md, "Step compliance").

Each step's check is data next to the step definitions (``monitor.protocol.definitions.STEP_CHECKS``);
this module applies it to a window's medians, relative to the person's own neutral window and that
window's noise (a robust SD over its frames). A step whose movement stays within what the neutral
face does anyway was not performed: it is recorded as such and left out of every score and grade.
A check that needs the neutral and has none (a recording labelled without a neutral step) cannot be
made: ``performed`` is then None, and the step is kept.

``check_recent`` runs the same check on the last seconds of a live step's frames, so the guided
check can say "I can't see your eyes closed — try again" and offer a repeat.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.measures.face_model import SIDES
from monitor.protocol.definitions import STEP_CHECKS, CheckKind, Signal, StepCheck

NOISE_K = 3.0  # a change counts only when it is this many neutral SDs or more
CLOSED_MM = 2.0  # a fissure at or below this (or below CLOSED_OF_NEUTRAL of the neutral one) is closed
CLOSED_OF_NEUTRAL = 0.3
CLOSED_FRACTION = 0.5  # … or the eye was flagged closed in at least this share of the frames
OPEN_OF_NEUTRAL = 0.5  # an eye that stays open keeps at least this share of its neutral fissure
CLOSING_MM = 2.0  # an eye asked to close that narrowed this much from neutral tried (a weak lid may not shut)
GAZE_MIN_MM = 1.0  # the least iris excursion toward the asked direction that counts
NOT_PERFORMED = "not_performed"  # the step record status of a step the person did not perform


@dataclass(frozen=True)
class Compliance:
    performed: bool | None  # None: could not be checked (no neutral to compare with)
    reason: str
    evidence: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"performed": self.performed, "reason": self.reason, "evidence": self.evidence}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Compliance | None":
        return None if not d else cls(d.get("performed"), str(d.get("reason", "")), dict(d.get("evidence") or {}))


def _robust_sd(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if x.size >= 3 else math.nan


def window_values(columns: Mapping[str, np.ndarray]) -> tuple[dict[str, float], dict[str, float]]:
    """A window's medians and noise (robust SD) per column; boolean columns (eye_closed_<side>)
    give the share of frames where they are true."""
    medians, noise = {}, {}
    for name, values in columns.items():
        x = np.asarray(values)
        if x.dtype == bool:
            medians[name] = float(x.mean()) if x.size else math.nan
            continue
        x = np.asarray(x, float)
        fin = x[np.isfinite(x)]
        medians[name] = float(np.median(fin)) if fin.size else math.nan
        noise[name] = _robust_sd(x)
    return medians, noise


def _num(d: Mapping | None, key: str) -> float:
    v = None if d is None else d.get(key)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def _eye(values: Mapping, neutral: Mapping | None, side: str) -> dict:
    """One eye's fissure, closed share, and whether it reads as closed / open."""
    fissure = _num(values, f"eye_aperture_raw_{side}_mm")
    rest = _num(neutral, f"eye_aperture_raw_{side}_mm")
    closed_share = _num(values, f"eye_closed_{side}")
    limit = max(CLOSED_MM, CLOSED_OF_NEUTRAL * rest) if math.isfinite(rest) else CLOSED_MM
    closed = (math.isfinite(closed_share) and closed_share >= CLOSED_FRACTION) or \
        (math.isfinite(fissure) and fissure <= limit)
    if math.isfinite(fissure):
        open_ = not closed and fissure >= OPEN_OF_NEUTRAL * (rest if math.isfinite(rest) else 8.0)
    else:  # the opening was withheld (a gate refused the frames): the eye's closed flags alone
        open_ = not closed and math.isfinite(closed_share) and closed_share < 1.0 - CLOSED_FRACTION
    return {"fissure_mm": _round(fissure), "neutral_mm": _round(rest), "closed_share": _round(closed_share),
            "closed_limit_mm": round(limit, 2), "closed": closed, "open": open_,
            "judged": math.isfinite(fissure) or math.isfinite(closed_share)}


def _mm(eye: dict) -> str:
    """An eye's opening for a reason line: its value in mm, or that it was withheld."""
    return "withheld" if eye["fissure_mm"] is None else f"{eye['fissure_mm']} mm"


def _round(v: float, nd: int = 3) -> float | None:
    return round(v, nd) if math.isfinite(v) else None


def _closure(check: StepCheck, values: Mapping, neutral: Mapping | None) -> Compliance:
    """Both eyes: performed when at least one eye closed (a weak lid may not shut: the stronger side
    shows the effort). One eye: that eye closed, or narrowed by CLOSING_MM from neutral, while the
    other stays open."""
    eyes = {s: _eye(values, neutral, s) for s in SIDES}
    if not all(e["judged"] for e in eyes.values()):
        return Compliance(None, "not checked: the eye opening was withheld in this step", {"eyes": eyes})
    if check.kind == CheckKind.BOTH_CLOSED:
        ok = any(e["closed"] for e in eyes.values())
        shut = ", ".join(f"{s} {_mm(e)}" for s, e in eyes.items())
        return Compliance(ok, f"{'' if ok else 'not '}closed: eye opening {shut} "
                              f"(closed at ≤ {eyes['left']['closed_limit_mm']} / {eyes['right']['closed_limit_mm']} mm)",
                          {"eyes": eyes})
    other = "left" if check.side == "right" else "right"
    shut, kept = eyes[check.side], eyes[other]
    narrowed = (shut["neutral_mm"] or math.nan) - (shut["fissure_mm"] or math.nan)
    if (shut["closed"] or narrowed >= CLOSING_MM) and kept["open"]:
        return Compliance(True, f"the {check.side} eye closed ({_mm(shut)}), the {other} open "
                                f"({_mm(kept)})", {"eyes": eyes})
    why = f"the {other} eye closed too ({_mm(kept)})" if not kept["open"] else \
        f"the {check.side} eye is open ({_mm(shut)})"
    return Compliance(False, why, {"eyes": eyes})


def _gaze(check: StepCheck, values: Mapping, neutral: Mapping | None, noise: Mapping | None) -> Compliance:
    if neutral is None:
        return Compliance(None, "not checked: no neutral step to compare the gaze with")
    ux, uy = check.direction
    norm = math.hypot(ux, uy) or 1.0
    along, sds = [], []
    for s in SIDES:
        h, v = _num(values, f"gaze_horizontal_{s}_mm"), _num(values, f"gaze_vertical_{s}_mm")
        h0, v0 = _num(neutral, f"gaze_horizontal_{s}_mm"), _num(neutral, f"gaze_vertical_{s}_mm")
        if all(math.isfinite(x) for x in (h, v, h0, v0)):
            along.append(((h - h0) * ux + (v - v0) * uy) / norm)
            sds += [_num(noise, f"gaze_horizontal_{s}_mm"), _num(noise, f"gaze_vertical_{s}_mm")]
    if not along:
        return Compliance(None, "not checked: no iris position in this window or the neutral one")
    moved = float(np.mean(along))
    sd = max((x for x in sds if math.isfinite(x)), default=0.0)
    need = max(GAZE_MIN_MM, NOISE_K * sd)
    ok = moved >= need
    return Compliance(ok, f"irises moved {moved:.2f} mm toward the asked direction (needs ≥ {need:.2f} mm)",
                      {"along_mm": round(moved, 3), "needed_mm": round(need, 3), "neutral_sd_mm": round(sd, 3)})


def _signal_change(sig: Signal, values: Mapping, neutral: Mapping, noise: Mapping | None) -> dict | None:
    """The signal's change over neutral (the side that moved more) and the change it needs."""
    if sig.unit == "mm":
        names = [f"{sig.name}_{s}_mm" for s in SIDES]
    else:
        names = [sig.name.replace("<side>", s.title()) for s in SIDES] if "<side>" in sig.name else [sig.name]
    best = None
    for n in names:
        a, b = _num(values, n), _num(neutral, n)
        if math.isfinite(a) and math.isfinite(b):
            change, sd = sig.sign * (a - b), _num(noise, n)
            need = max(sig.min_change, NOISE_K * sd) if math.isfinite(sd) else sig.min_change
            if best is None or change / need > best["change"] / best["needed"]:
                best = {"column": n, "change": round(change, 4), "needed": round(need, 4)}
    return best


def _rise(check: StepCheck, values: Mapping, neutral: Mapping | None, noise: Mapping | None) -> Compliance:
    if neutral is None:
        return Compliance(None, "not checked: no neutral step to compare the movement with")
    changes = [c for sig in check.signals if (c := _signal_change(sig, values, neutral, noise)) is not None]
    if not changes:
        return Compliance(None, "not checked: none of the step's measures has a value here and at neutral")
    best = max(changes, key=lambda c: c["change"] / c["needed"])  # in units of what each needs
    ok = best["change"] >= best["needed"]
    return Compliance(ok, f"{best['column']} changed {best['change']:g} from neutral (needs ≥ {best['needed']:g})",
                      {"signals": changes})


def check_step(step: str, values: Mapping, neutral: Mapping | None, noise: Mapping | None = None,
               check: StepCheck | None = None) -> Compliance:
    """Whether ``step`` was performed in a window with medians ``values`` (series columns, blendshape
    names, eye_closed_<side> as a share of frames), against the neutral window's medians and noise."""
    check = check or STEP_CHECKS.get(step)
    if check is None:
        return Compliance(None, f"not checked: no check for step {step!r}")
    if check.kind == CheckKind.NONE:
        return Compliance(True, f"{check.asks}: the reference, not checked")
    if check.kind in (CheckKind.BOTH_CLOSED, CheckKind.ONE_CLOSED):
        return _closure(check, values, neutral)
    if check.kind == CheckKind.GAZE:
        return _gaze(check, values, neutral, noise)
    return _rise(check, values, neutral, noise)


def _columns(rows: Sequence[Mapping]) -> dict[str, np.ndarray]:
    keys = {k for r in rows for k, v in r.items() if isinstance(v, (bool, int, float)) or v is None}
    out = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        if all(isinstance(v, bool) for v in vals):
            out[k] = np.array(vals, bool)
        else:
            out[k] = np.array([math.nan if v is None or isinstance(v, bool) else v for v in vals], float)
    return out


def check_recent(step: str, recent: Sequence[Mapping], neutral_rows: Sequence[Mapping] | None) -> Compliance:
    """The live form: ``recent`` is the last seconds of the step's frames (series rows with the
    blendshapes by name; for a sustained step, its first seconds), ``neutral_rows`` the neutral
    step's frames (None or empty: none yet)."""
    rows = [r for r in recent if r.get("face", True)]
    if not rows:
        return Compliance(None, "not checked: no face in the last frames")
    values, _ = window_values(_columns(rows))
    base = [r for r in (neutral_rows or ()) if r.get("face", True)]
    neutral, noise = window_values(_columns(base)) if base else (None, None)
    return check_step(step, values, neutral, noise)


def retry_message(step: str, compliance: Compliance) -> str | None:
    """What the guided check says when a step was not performed ("I can't see your eyes closed — try
    again"); None when it was, or could not be checked."""
    if compliance.performed is not False:
        return None
    check = STEP_CHECKS.get(step)
    return f"I can't see {check.asks if check else 'the step'} — try again"


def mark_records(records: Sequence, verdicts: Mapping[str, Compliance]) -> None:
    """Step records (monitor.protocol.run.StepRecord) of steps found not performed get status
    not_performed; every checked record gets ``performed`` and ``reason``."""
    for rec in records:
        c = verdicts.get(rec.step)
        if c is None:
            continue
        rec.performed, rec.reason = c.performed, c.reason
        if c.performed is False and rec.status == "done":
            rec.status = NOT_PERFORMED
