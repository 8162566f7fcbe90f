"""From one frame's landmarks to the per-frame series values in mm and degrees (DESIGN §2)."""

from __future__ import annotations

import math

import numpy as np

from calibration.scale import IrisScale
from engines.base import LandmarkResult

from .kernels import MEASURE_NAMES, frame_measures, head_angles

# The series columns this module fills, besides blendshapes.
LENGTH_COLUMNS = tuple(f"{n}_mm" for n in MEASURE_NAMES)
ANGLE_COLUMNS = ("yaw_deg", "pitch_deg", "roll_deg")
MEASURE_COLUMNS = LENGTH_COLUMNS + ANGLE_COLUMNS + ("mm_per_px",)


def empty_measures() -> dict[str, float]:
    return {c: math.nan for c in MEASURE_COLUMNS}


def compute_measures(result: LandmarkResult, scale: IrisScale) -> dict[str, float]:
    """Series values for one frame; NaN everywhere when there is no face or no scale yet."""
    if not result.face:
        return empty_measures()
    px = frame_measures(result.landmarks_px, result.matrix)
    yaw, pitch, roll = head_angles(result.matrix)
    mm_per_px = scale.update(px[-2], px[-1], yaw)
    out = {col: float(v * mm_per_px) for col, v in zip(LENGTH_COLUMNS, px)}
    out.update(yaw_deg=float(yaw), pitch_deg=float(pitch), roll_deg=float(roll), mm_per_px=float(mm_per_px))
    return out


def nan_to_none(values: dict) -> dict:
    """JSON has no NaN: missing values travel as null."""
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in values.items()}
