"""Gaze excursions per eye during the gaze steps (see docs/measures.md, "Gaze").

Per frame, each iris centre is located relative to the midpoint of its own eye's corners in the
head frame (``gaze_horizontal_<side>_mm``, + toward the patient's left; ``gaze_vertical_<side>_mm``,
+ up). In a gaze step, each eye's excursion is its median displacement from the neutral position,
and its component along the asked direction. The two eyes of a healthy person move together, so a
difference between them flags disconjugate gaze, which expression software cannot see.
"""

from __future__ import annotations

import math

from monitor.measures.asymmetry import finite
from monitor.measures.face_model import SIDES
from monitor.protocol import steps as S


def _pos(med: dict, side: str) -> tuple[float, float] | None:
    h, v = med.get(f"gaze_horizontal_{side}_mm"), med.get(f"gaze_vertical_{side}_mm")
    if not (finite(h) and finite(v)):
        return None
    return h, v


def gaze_excursions(per_step: dict[str, dict], neutral: dict | None) -> dict:
    out = {}
    for step, (ux, uy) in S.GAZE_DIRECTIONS.items():
        med = per_step.get(step)
        if med is None or neutral is None:
            continue
        norm = math.hypot(ux, uy)
        eyes = {}
        for s in SIDES:
            p, p0 = _pos(med, s), _pos(neutral, s)
            if p is None or p0 is None:
                continue
            dx, dy = p[0] - p0[0], p[1] - p0[1]
            eyes[s] = {"dx_mm": round(dx, 3), "dy_mm": round(dy, 3),
                       "along_mm": round((dx * ux + dy * uy) / norm, 3)}
        entry = {"eyes": eyes}
        if len(eyes) == 2:
            entry["difference_mm"] = round(math.hypot(eyes["left"]["dx_mm"] - eyes["right"]["dx_mm"],
                                                      eyes["left"]["dy_mm"] - eyes["right"]["dy_mm"]), 3)
        out[step] = entry
    return out
