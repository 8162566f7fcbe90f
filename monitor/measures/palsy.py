"""Facial-palsy grades estimated from landmark measures (see docs/measures.md, "Palsy grades").

eFace (Banks et al., Plast Reconstr Surg 2015) grades static, dynamic and synkinesis items on
0–100 where 100 is normal; Auto-eFace (Miller et al. 2018) computes them from Emotrics landmark
measures. The items here follow that idea with formulas a reader can check: each item compares the
weaker side with the stronger side in one measure, from the steps present (a video's protocol
steps, or a photo set's poses: monitor.protocol.poses); items whose pose is missing are listed.
Items that landmarks cannot measure (nasolabial fold depth, mentalis, platysma) are left out and
listed. The House–Brackmann grade (House & Brackmann 1985) is
estimated from the same movement ratios with the thresholds documented in docs/measures.md. These
are estimates for tracking, not a clinician's grade.

A movement item needs movement: when neither side moves more than the noise floor (MOVEMENT_NOISE,
or NOISE_K times the neutral window's measured noise where that is larger) the item is None, never
a ratio of two noises. Steps the person did not perform are left out by the caller (the summary).
"""

from __future__ import annotations

from monitor.measures.asymmetry import MOVEMENT_NOISE, SIDES, column, finite, movement
from monitor.protocol import poses as P
from monitor.protocol import steps as S

NOT_MEASURED = ("static: nasolabial fold", "dynamic: nasolabial fold with smile", "synkinesis: mentalis",
                "synkinesis: platysmal")
# dynamic items: (item, step, measure stem, sign of movement, unit); the lower lip (eFace's "EEE")
# from the lower-lip-depression photo: the lower teeth it uncovers on each side (dental show, mm²)
DYNAMIC_ITEMS = (("brow_elevation", S.RAISING_EYEBROWS, "brow_height", +1, "mm"),
                 ("gentle_eye_closure", S.EYES_CLOSED, "eye_aperture_raw", -1, "mm"),
                 ("full_eye_closure", S.EYES_CLOSED_FIRMLY, "eye_aperture_raw", -1, "mm"),
                 ("oral_commissure_with_smile", S.SHOWING_TEETH, "commissure_excursion", +1, "mm"),
                 ("lower_lip_depression", P.LOWER_LIP_DEPRESSION, "dental_show", +1, "mm2"))
OCULAR_SYNKINESIS_STEPS = (S.SHOWING_TEETH, S.WHISTLING)  # mouth movements that may narrow an eye
MIDFACIAL_SYNKINESIS_STEPS = (S.EYES_CLOSED_FIRMLY, S.SHOWING_TEETH)  # eye closure pulls the mouth corner
NOISE_K = 3.0  # a movement counts when it exceeds this many SDs of the measure in the neutral window


def item_steps() -> dict[str, tuple[str, ...]]:
    """The steps each item is measured from, besides rest (the neutral step, which feeds every item);
    an item uses those of its steps that the session has."""
    return {**{f"dynamic:{item}": (step,) for item, step, *_ in DYNAMIC_ITEMS},
            "synkinesis:ocular": OCULAR_SYNKINESIS_STEPS, "synkinesis:midfacial": MIDFACIAL_SYNKINESIS_STEPS}


def _ratio(a: float | None, b: float | None) -> float | None:
    """100 × smaller / larger, 100 when both are about zero (no movement on either side)."""
    if not (finite(a) and finite(b)):
        return None
    a, b = max(a, 0.0), max(b, 0.0)
    hi = max(a, b)
    if hi < 1e-6:
        return None
    return 100.0 * min(a, b) / hi


def _sym(left: float | None, right: float | None) -> float | None:
    """100 × (1 − |L − R| / max(|L|, |R|)) — 100 when equal."""
    if not (finite(left) and finite(right)):
        return None
    hi = max(abs(left), abs(right))
    return None if hi < 1e-9 else max(0.0, 100.0 * (1.0 - abs(left - right) / hi))


def _both(med: dict, stem: str) -> tuple:
    return med.get(column(stem, "left")), med.get(column(stem, "right"))


def _ocular_synkinesis(per_step: dict[str, dict], rest: dict) -> float | None:
    """100 minus the extra narrowing of one eye over the other (in % of the wider resting fissure)
    during a mouth movement (smile, pucker); the worst of those present."""
    fiss = _both(rest, "eye_aperture_raw")
    if not all(finite(f) and f for f in fiss):
        return None
    scores = []
    for step in OCULAR_SYNKINESIS_STEPS:
        if step in per_step:
            narrow = {s: movement(per_step[step], rest, "eye_aperture_raw", -1, s) for s in SIDES}
            if all(v is not None for v in narrow.values()):
                scores.append(max(0.0, 100.0 * (1.0 - abs(narrow["left"] - narrow["right"]) / max(fiss))))
    return min(scores) if scores else None


def _missing_poses(per_step: dict[str, dict], undone: frozenset[str] = frozenset()) -> dict[str, str]:
    """Each item left out for want of a pose → the photo-set pose(s) it needs; a pose that is there
    but was not performed (``undone``, the step compliance check) is named as such."""
    def name(step: str) -> str:
        pose = P.pose_for_step(step)
        label = pose.name if pose else step
        return f"{label}, not performed" if step in undone else label

    out = {f"dynamic:{item}": name(step) for item, step, *_ in DYNAMIC_ITEMS if step not in per_step}
    if not any(s in per_step for s in OCULAR_SYNKINESIS_STEPS):
        out["synkinesis:ocular"] = " or ".join(name(s) for s in OCULAR_SYNKINESIS_STEPS)
    lacking = [name(s) for s in MIDFACIAL_SYNKINESIS_STEPS if s not in per_step]
    if lacking:
        out["synkinesis:midfacial"] = " and ".join(lacking)
    return out


def noise_floor(stem: str, unit: str, noise: dict[str, float] | None) -> float:
    """The least movement that is movement: the fixed floor, or NOISE_K × the larger side's noise
    (robust SD over the neutral window) when that is larger."""
    sds = [v for s in SIDES if finite(v := (noise or {}).get(column(stem, s, unit)))]
    return max([MOVEMENT_NOISE[unit]] + [NOISE_K * v for v in sds])


def eface(per_step: dict[str, dict], noise: dict[str, float] | None = None,
          undone: frozenset[str] = frozenset()) -> dict | None:
    """eFace-style items and sub-scores from per-step medians, from the steps present; None without
    a neutral step (rest). ``noise``: the neutral window's noise per column (robust SD), which raises
    the floor below which a movement item is None. ``from_steps`` lists the steps used,
    ``missing_poses`` the items left out for want of a pose, ``below_noise`` the items whose movement
    stayed under the floor on both sides."""
    rest = per_step.get(S.NEUTRAL)
    if rest is None:
        return None
    static = {
        "resting_brow": _sym(*_both(rest, "brow_height")),
        "resting_palpebral_fissure": _sym(*_both(rest, "eye_aperture")),
        "oral_commissure_at_rest": _sym(*_both(rest, "commissure_excursion")),
    }
    dyn = {}
    mv = {}
    below = {}
    for item, step, stem, sign, unit in DYNAMIC_ITEMS:
        if step in per_step:
            m = {s: movement(per_step[step], rest, stem, sign, s, unit) for s in SIDES}
            floor = noise_floor(stem, unit, noise)
            if all(finite(v) for v in m.values()) and max(m.values()) < floor:
                below[f"dynamic:{item}"] = round(floor, 3)
                dyn[item] = None
                continue
            mv[item] = m
            dyn[item] = _ratio(m["left"], m["right"])
    syn = {}
    ocular = _ocular_synkinesis(per_step, rest)
    if ocular is not None:
        syn["ocular"] = ocular
    closing = per_step.get(S.EYES_CLOSED_FIRMLY)
    if closing is not None and "oral_commissure_with_smile" in mv:
        pull = {s: movement(closing, rest, "commissure_excursion", +1, s) for s in SIDES}
        ref = max((v for v in mv["oral_commissure_with_smile"].values() if v is not None), default=None)
        if all(v is not None for v in pull.values()) and ref and ref > 0:
            syn["midfacial"] = max(0.0, 100.0 * (1.0 - abs(pull["left"] - pull["right"]) / ref))

    def mean(d: dict) -> float | None:
        v = [x for x in d.values() if x is not None]
        return round(sum(v) / len(v), 1) if v else None

    items = {**{f"static:{k}": v for k, v in static.items()}, **{f"dynamic:{k}": v for k, v in dyn.items()},
             **{f"synkinesis:{k}": v for k, v in syn.items()}}
    return {
        "static": mean(static), "dynamic": mean(dyn), "synkinesis": mean(syn), "total": mean(items),
        "items": {k: None if v is None else round(v, 1) for k, v in items.items()},
        "not_measured": list(NOT_MEASURED),
        "from_steps": [s for s in (S.NEUTRAL, *(i[1] for i in DYNAMIC_ITEMS), S.WHISTLING) if s in per_step],
        "missing_poses": _missing_poses(per_step, undone),
        "below_noise": below,
    }


def house_brackmann(eface_result: dict | None) -> dict | None:
    """House–Brackmann grade I–VI estimated from the dynamic eFace items (movement of the weaker side
    in % of the stronger side) and eye closure; None without the movement steps."""
    if not eface_result:
        return None
    items = eface_result["items"]
    moves = [items.get(k) for k in ("dynamic:brow_elevation", "dynamic:oral_commissure_with_smile")]
    closure = items.get("dynamic:full_eye_closure") or items.get("dynamic:gentle_eye_closure")
    moves = [m for m in moves if m is not None]
    if not moves or closure is None:
        return None
    worst = min(moves + [closure])
    mean = sum(moves) / len(moves)
    if worst >= 90:
        grade = 1
    elif mean >= 75 and closure >= 90:
        grade = 2
    elif mean >= 50 and closure >= 75:
        grade = 3
    elif mean >= 25:
        grade = 4
    elif mean >= 5:
        grade = 5
    else:
        grade = 6
    return {"grade": grade, "roman": "I II III IV V VI".split()[grade - 1],
            "movement_mean_pct": round(mean, 1), "eye_closure_pct": round(closure, 1)}
