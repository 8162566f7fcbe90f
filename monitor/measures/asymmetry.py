"""Left/right asymmetry in the Emotrics tradition (see docs/measures.md, "Asymmetry").

Inputs are per-side medians over a window (mm, degrees, mm²). For each paired measure: |L − R|, the
difference in % of the stronger side, and which side is weaker — the smaller brow height, fissure,
MRD1, commissure excursion, smile angle or dental show, or the larger commissure height (a drooping
corner sits lower). A side is named only when the difference reaches the measure's noise floor.
Dynamic asymmetry compares each side's movement from the person's neutral baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitor.measures.face_model import SIDES
from monitor.protocol import poses as P
from monitor.protocol import steps as S


@dataclass(frozen=True)
class Paired:
    stem: str  # series column is f"{stem}_{side}_{unit}"
    unit: str
    weaker_is_smaller: bool
    noise_floor: float  # below this |L − R| no side is named


STATIC = (
    Paired("brow_height", "mm", True, 1.0),
    Paired("eye_aperture", "mm", True, 0.5),
    Paired("mrd1", "mm", True, 0.5),
    Paired("commissure_height", "mm", False, 1.0),
    Paired("commissure_excursion", "mm", True, 1.0),
    Paired("smile_angle", "deg", True, 2.0),
    Paired("dental_show", "mm2", True, 5.0),
)

# movements: which measure a step moves, and the sign that counts as movement (+1: the measure grows)
MOVEMENTS = {
    S.RAISING_EYEBROWS: ("brow_height", +1),
    S.EYES_CLOSED: ("eye_aperture_raw", -1),
    S.EYES_CLOSED_FIRMLY: ("eye_aperture_raw", -1),
    S.SHOWING_TEETH: ("commissure_excursion", +1),
    "happiness": ("commissure_excursion", +1),
    S.WHISTLING: ("commissure_excursion", -1),
    P.SNARL: ("dental_show", +1, "mm2"),  # the upper lip lifts off the teeth (photo sets)
    P.LOWER_LIP_DEPRESSION: ("dental_show", +1, "mm2"),  # the lower lip uncovers the lower teeth (photo sets)
}
MOVEMENT_NOISE = {"mm": 1.0, "mm2": 5.0}  # below this difference in movement no side is named


def column(stem: str, side: str, unit: str = "mm") -> str:
    return f"{stem}_{side}_{unit}"


def finite(v) -> bool:
    """A number that is neither None nor NaN/inf."""
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def compare(left: float | None, right: float | None, weaker_is_smaller: bool, noise_floor: float) -> dict | None:
    """|L − R|, % of the stronger side and the weaker side for one pair of values."""
    if not (finite(left) and finite(right)):
        return None
    diff = abs(left - right)
    stronger = max(left, right) if weaker_is_smaller else min(left, right)
    pct = 100.0 * diff / abs(stronger) if abs(stronger) > 1e-9 else None
    if diff < noise_floor:
        weaker = "neither"
    elif (left < right) == weaker_is_smaller:
        weaker = "left"
    else:
        weaker = "right"
    return {"left": round(left, 3), "right": round(right, 3), "abs_diff": round(diff, 3),
            "diff_pct_of_stronger": None if pct is None else round(pct, 2), "weaker_side": weaker}


def static_asymmetry(medians: dict[str, float]) -> dict:
    """Per paired measure, from one window's medians (keys are series column names)."""
    out = {}
    for p in STATIC:
        c = compare(medians.get(column(p.stem, "left", p.unit)), medians.get(column(p.stem, "right", p.unit)),
                    p.weaker_is_smaller, p.noise_floor)
        if c is not None:
            out[f"{p.stem}_{p.unit}"] = c
    return out


def movement(step_medians: dict[str, float], neutral: dict[str, float], stem: str, sign: int, side: str,
             unit: str = "mm") -> float | None:
    col = column(stem, side, unit)
    a, b = step_medians.get(col), neutral.get(col)
    if not (finite(a) and finite(b)):
        return None
    return sign * (a - b)


def dynamic_asymmetry(per_step: dict[str, dict], neutral: dict[str, float]) -> dict:
    """Each side's movement from the neutral baseline in each movement step present, in mm (mm² for
    dental show)."""
    out = {}
    for step, (stem, sign, *unit) in MOVEMENTS.items():
        if step not in per_step:
            continue
        unit = unit[0] if unit else "mm"
        mv = {s: movement(per_step[step], neutral, stem, sign, s, unit) for s in SIDES}
        c = compare(mv["left"], mv["right"], True, MOVEMENT_NOISE[unit])
        if c is not None:
            c["measure"] = f"{stem}_{unit}"
            out[step] = c
    return out


def asymmetry_index(static: dict, dynamic: dict) -> dict | None:
    """Composite facial asymmetry index: the mean of the % differences of brow height, fissure
    height and commissure excursion at rest, and of every movement's % difference, 0 = symmetric.
    Returns the index and the parts it was made of."""
    parts = {}
    for key in ("brow_height_mm", "eye_aperture_mm", "commissure_excursion_mm"):
        if key in static and static[key]["diff_pct_of_stronger"] is not None:
            parts[f"rest:{key}"] = static[key]["diff_pct_of_stronger"]
    for step, c in dynamic.items():
        if c["diff_pct_of_stronger"] is not None:
            parts[f"{step}:{c['measure']}"] = min(100.0, c["diff_pct_of_stronger"])
    if not parts:
        return None
    return {"index_pct": round(sum(parts.values()) / len(parts), 2), "parts": parts}
