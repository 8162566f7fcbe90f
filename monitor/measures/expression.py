"""Expression strength from MediaPipe blendshapes (see docs/measures.md, "Expression strength").

The MG study analysed facial-expression software output as the 95th percentile of action-unit and
emotion intensities per protocol step. Here the action units (FACS) come from MediaPipe's ARKit-style
blendshapes, and the six emotion intensities are the mean of their FACS prototype's action units
(EMFACS prototypes, Friesen & Ekman 1983). These are descriptive intensities in 0–1, not a validated
emotion classifier. Blendshape sides are the patient's own (eyeBlinkLeft is the patient's left eye;
checked by planting a closed lid on one side).
"""

from __future__ import annotations

import numpy as np

from engines.base import BLENDSHAPE_NAMES
from monitor.measures.face_model import SIDES, Blendshape
from monitor.protocol import steps as S

# action unit → blendshape stem; "<side>" is replaced by Left/Right, stems without it have no sides
ACTION_UNITS = {
    "AU01": "browInnerUp", "AU02": "browOuterUp<side>", "AU04": "browDown<side>", "AU05": "eyeWide<side>",
    "AU06": "cheekSquint<side>", "AU07": "eyeSquint<side>", "AU09": "noseSneer<side>",
    "AU10": "mouthUpperUp<side>", "AU12": "mouthSmile<side>", "AU14": "mouthDimple<side>",
    "AU15": "mouthFrown<side>", "AU16": "mouthLowerDown<side>", "AU17": "mouthShrugLower",
    "AU18": "mouthPucker", "AU20": "mouthStretch<side>", "AU22": "mouthFunnel", "AU23": "mouthPress<side>",
    "AU26": "jawOpen", "AU43": "eyeBlink<side>",
}
EMOTION_PROTOTYPES = {
    "happiness": ("AU06", "AU12"),
    "sadness": ("AU01", "AU04", "AU15"),
    "surprise": ("AU01", "AU02", "AU05", "AU26"),
    "fear": ("AU01", "AU02", "AU04", "AU05", "AU07", "AU20", "AU26"),
    "anger": ("AU04", "AU05", "AU07", "AU23"),
    "disgust": ("AU09", "AU15", "AU16"),
}
# the action units each step asks for (its emotion's prototype for the emotion steps)
STEP_UNITS = {
    S.NEUTRAL: (), S.EYES_CLOSED: ("AU43",), S.EYES_CLOSED_FIRMLY: ("AU43", "AU07", "AU06"),
    S.RIGHT_EYE_CLOSED: ("AU43",), S.LEFT_EYE_CLOSED: ("AU43",),
    S.SHOWING_TEETH: ("AU12", "AU10", "AU20"), S.RAISING_EYEBROWS: ("AU01", "AU02"),
    S.MOUTH_OPEN: ("AU26",), S.WHISTLING: ("AU18", "AU22"), S.TONGUE_PROTRUSION: ("AU26",),
    **{e: EMOTION_PROTOTYPES[e] for e in S.EMOTIONS},
}


def _stem(stem: str, side: str) -> int:
    return Blendshape[stem.replace("<side>", side.title())]


def action_units(blendshapes: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 52) blendshapes → {"AU12_left": (N,), …, "AU01": (N,)}; sided units per side."""
    b = np.asarray(blendshapes, float)
    out = {}
    for au, stem in ACTION_UNITS.items():
        if "<side>" in stem:
            for s in SIDES:
                out[f"{au}_{s}"] = b[:, _stem(stem, s)]
        else:
            out[au] = b[:, Blendshape[stem]]
    return out


def _unit(aus: dict, au: str, side: str) -> np.ndarray:
    return aus.get(f"{au}_{side}", aus.get(au))


def emotions(aus: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-frame emotion intensity per side: the mean of the prototype's action units."""
    out = {}
    for emo, units in EMOTION_PROTOTYPES.items():
        for s in SIDES:
            out[f"{emo}_{s}"] = np.mean([_unit(aus, u, s) for u in units], axis=0)
        out[emo] = 0.5 * (out[f"{emo}_left"] + out[f"{emo}_right"])
    return out


def _p95(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return round(float(np.percentile(x, 95)), 4) if x.size else None


def expression_strength(blendshapes: np.ndarray, step: str | None = None) -> dict:
    """95th percentiles over one step's frames: the step's own action units (per side, and the
    left − right difference), and the six emotions (per side and both)."""
    b = np.asarray(blendshapes, float)
    b = b[np.isfinite(b).all(1)] if b.size else b.reshape(0, 52)
    if b.shape[0] == 0:
        return {"frames": 0}
    aus = action_units(b)
    emo = emotions(aus)
    units = STEP_UNITS.get(step) if step else None
    if units is None:  # unknown or no step: every unit
        units = tuple(ACTION_UNITS)
    au_out = {}
    for u in units:
        if f"{u}_left" in aus:
            left, right = _p95(aus[f"{u}_left"]), _p95(aus[f"{u}_right"])
            au_out[u] = {"left": left, "right": right,
                         "left_minus_right": None if left is None or right is None else round(left - right, 4)}
        else:
            au_out[u] = {"both": _p95(aus[u])}
    emo_out = {e: {"both": _p95(emo[e]), "left": _p95(emo[f"{e}_left"]), "right": _p95(emo[f"{e}_right"])}
               for e in EMOTION_PROTOTYPES}
    return {"frames": int(b.shape[0]), "action_units_p95": au_out, "emotions_p95": emo_out}


def blendshape_side_differences(blendshapes: np.ndarray) -> dict[str, float]:
    """p95(left) − p95(right) for every sided blendshape pair (patient's sides)."""
    b = np.asarray(blendshapes, float)
    b = b[np.isfinite(b).all(1)] if b.size else b
    out = {}
    if b.shape[0] == 0:
        return out
    for name in BLENDSHAPE_NAMES:
        if name.endswith("Left"):
            stem = name[:-4]
            li, ri = Blendshape[name], Blendshape[stem + "Right"]
            out[stem] = round(float(np.percentile(b[:, li], 95) - np.percentile(b[:, ri], 95)), 4)
    return out
