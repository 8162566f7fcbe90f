"""Plausibility gates: is this frame's mesh on a face, and is the face turned so little that its
measures hold? (pure computation; docs/measures.md, "Plausibility gates")

The landmark model always returns a face-shaped mesh, even where it sits half a face too low or on
something that is not a face. Before any measure is reported, a frame is refused, with a reason, when

- ``iris_not_dark``: every clearly open eye shows an "iris" no darker than the sclera beside it (a real
  iris and pupil are darker than the white of the eye under any light);
- ``ipd_implausible`` / ``intercanthal_implausible``: the distance between the iris centres, or between
  the inner eye corners, on this frame's own iris scale lies outside the adult human range;
- ``pose``: the head is turned or tilted beyond the limits within which the measures were validated.

The ranges come from anthropometry (docs/measures.md cites the sources), widened for how far this
frame's iris scale can be off: the visible iris diameter varies between adults by about ±0.5 mm (SD)
around 11.7 mm, so ±3 SD is ±13 %; and lids that cover part of the iris (squinting) shrink the measured
iris and inflate every implied length, by up to a fifth in the sample clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# adult anthropometric ranges (mm)
IPD_ADULT_MM = (52.0, 78.0)  # interpupillary distance, Dodgson 2004: adult range
INTERCANTHAL_ADULT_MM = (25.0, 41.0)  # en–en, Farkas 1994: adult means 31.8–33.3 mm, SD 2.3–2.7, ±3 SD
IRIS_SPREAD = 0.13  # ±3 SD of the visible iris diameter between adults (0.5 mm SD on 11.7 mm)
LID_COVER = 1.25  # lids covering the iris make it look smaller, and implied lengths up to this much larger

OK = "ok"
REASONS = ("iris_not_dark", "ipd_implausible", "intercanthal_implausible", "pose")


def _widened(adult: tuple[float, float]) -> tuple[float, float]:
    return adult[0] * (1.0 - IRIS_SPREAD), adult[1] * LID_COVER


@dataclass(frozen=True)
class GateLimits:
    """When a frame's measures are reported (see the module docstring and docs/measures.md)."""

    max_yaw_deg: float = 25.0  # beyond it the iris no longer calibrates the scale (calibration/scale.py)
    max_pitch_deg: float = 25.0  # the eyelid refinement's limit (monitor/measures/frame.py, EyeLimits)
    open_blink: float = 0.35  # eyeBlink<Side> below this: the eye is clearly open, its iris must show
    max_iris_to_sclera: float = 1.0  # iris centre luma at or above this × the sclera's: not an iris
    ipd_mm: tuple[float, float] = _widened(IPD_ADULT_MM)
    intercanthal_mm: tuple[float, float] = _widened(INTERCANTHAL_ADULT_MM)


LIMITS = GateLimits()


@dataclass(frozen=True)
class MeshGeometry:
    """The lengths the gates judge, in the same (head-frame or 3-D image) pixels."""

    ipd_px: float  # iris centre to iris centre
    intercanthal_px: float  # inner eye corner to inner eye corner
    iris_px: float  # this frame's horizontal iris diameter (mean of the eyes that have one)


def iris_not_dark(evidence: np.ndarray, blinks: tuple[float, float], limits: GateLimits = LIMITS) -> bool:
    """True when at least one eye is clearly open and no clearly open eye shows an iris darker than its
    sclera. ``evidence`` is eye_evidence()'s (2, 2) rows [iris luma, sclera luma], row 0 the left eye."""
    judged = [row for row, blink in zip(evidence, blinks) if blink < limits.open_blink and np.isfinite(row).all()]
    return bool(judged) and all(iris >= limits.max_iris_to_sclera * sclera for iris, sclera in judged)


def mesh_refusal(geometry: MeshGeometry, evidence: np.ndarray | None, blinks: tuple[float, float],
                 iris_mm: float, limits: GateLimits = LIMITS) -> str | None:
    """Why this mesh is not taken for a face (one of REASONS), or None. ``evidence`` may be None (no
    image): then only the lengths are judged. ``iris_mm`` is the iris diameter the scale assumes."""
    if evidence is not None and iris_not_dark(evidence, blinks, limits):
        return "iris_not_dark"
    if not (math.isfinite(geometry.iris_px) and geometry.iris_px > 0):
        return None  # no scale in this frame: nothing in mm to judge (and none is reported)
    mm = iris_mm / geometry.iris_px
    for value, (lo, hi), reason in ((geometry.ipd_px, limits.ipd_mm, "ipd_implausible"),
                                    (geometry.intercanthal_px, limits.intercanthal_mm, "intercanthal_implausible")):
        if math.isfinite(value) and not lo <= value * mm <= hi:
            return reason
    return None


def pose_refusal(yaw_deg: float, pitch_deg: float, limits: GateLimits = LIMITS) -> str | None:
    """"pose" when the head is turned or tilted beyond the limits, else None."""
    if abs(yaw_deg) > limits.max_yaw_deg or abs(pitch_deg) > limits.max_pitch_deg:
        return "pose"
    return None
