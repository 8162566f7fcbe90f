"""From one frame's landmarks and pixels to the per-frame series values in mm and degrees (DESIGN §2).

Eyelid measures come from the image (monitor/measures/kernels/_eyelid.py), because the landmark model's lid
points lag a lid that really moves; the landmark-only values are kept beside them as ``*_raw_*``.
When an eye cannot be measured (closed, covered, out of frame, turned too far) its refined values
are NaN and ``eye_status_<side>`` says why — never a guessed number. A frame whose mesh does not sit
on a face, or whose head is turned beyond the pose gate, has no measure at all and ``gate_status``
says why (monitor/measures/gates.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from calibration.scale import IrisScale
from engines.base import LandmarkResult
from monitor.measures import face_model as L
from monitor.measures.face_model import SIDES, Blendshape
from monitor.measures.gates import OK, MeshGeometry, mesh_refusal, pose_refusal
from monitor.measures.kernels import (
    MEASURE_NAMES,
    EyeSlot,
    Measure,
    MouthSlot,
    eye_evidence,
    eyelids,
    face_size,
    frame_measures,
    head_angles,
    mouth_corners,
)
from monitor.measures.kernels._mouth import MAX_LIP_GAP
from monitor.measures.kernels.api import ANGLE_OUTPUTS, AREA_OUTPUTS
from monitor.measures.schema import BOOL_COLUMNS, FLOAT_COLUMNS, LANDMARK_COLUMNS, STATUS_COLUMNS


@dataclass(frozen=True)
class EyeLimits:
    """When an eye's refined measures are trusted (see docs/measures.md, "Eyelids")."""

    max_yaw_deg: float = 30.0
    max_pitch_deg: float = 25.0
    closed_blink: float = 0.5  # MediaPipe eyeBlink<Side> at or above this: the eye is closed
    min_confidence: float = 0.4
    # edge strengths that give full confidence (typical open eyes under room light reach these)
    full_upper_contrast: float = 0.5
    full_lower_contrast: float = 0.3
    full_iris_score: float = 20.0


LIMITS = EyeLimits()
_BLINK = {s: Blendshape[f"eyeBlink{s.title()}"] for s in SIDES}


def empty_measures(status: str = "no_face") -> dict:
    out: dict = {c: math.nan for c in FLOAT_COLUMNS}
    out.update({c: False for c in BOOL_COLUMNS})
    out.update({c: status for c in STATUS_COLUMNS})
    return out


def eye_state(eye: np.ndarray, blink: float, yaw: float, pitch: float, limits: EyeLimits = LIMITS) -> tuple[str, float]:
    """(status, confidence 0–1) of one eye's refinement row. Status is "ok" or the reason the eye
    is not measured: out_of_frame, pose, closed, low_contrast."""
    if not eye[EyeSlot.IN_FRAME] >= 1.0:
        return "out_of_frame", 0.0
    if abs(yaw) > limits.max_yaw_deg or abs(pitch) > limits.max_pitch_deg:
        return "pose", 0.0
    if blink >= limits.closed_blink:
        return "closed", 0.0
    parts = (eye[EyeSlot.C_UPPER] / limits.full_upper_contrast, eye[EyeSlot.C_LOWER] / limits.full_lower_contrast,
             eye[EyeSlot.IRIS_SCORE] / limits.full_iris_score)
    if any(not np.isfinite(p) for p in parts) or not eye[EyeSlot.T_LOWER] > eye[EyeSlot.T_UPPER]:
        return "low_contrast", 0.0
    conf = float(np.clip(min(parts), 0.0, 1.0))
    if conf < limits.min_confidence:
        return "low_contrast", conf
    return "ok", conf


def _geometry(landmarks_px: np.ndarray, px: np.ndarray) -> MeshGeometry:
    pts = landmarks_px.astype(np.float64)
    iris = np.array([px[Measure.iris_diameter_left], px[Measure.iris_diameter_right]])
    iris = iris[np.isfinite(iris) & (iris > 0)]
    return MeshGeometry(float(np.linalg.norm(pts[L.LEFT_IRIS_CENTER] - pts[L.RIGHT_IRIS_CENTER])),
                        float(px[Measure.intercanthal]), float(iris.mean()) if iris.size else math.nan)


def _refused(reason: str, result: LandmarkResult, mm_per_px: float, angles: tuple | None) -> dict:
    """A frame withheld by a gate: no measure, the reason in every status column; the head angles
    only when the mesh is a face (a pose refusal)."""
    out = empty_measures(reason)
    out["mm_per_px"] = float(mm_per_px)
    if angles is not None:
        out.update(yaw_deg=float(angles[0]), pitch_deg=float(angles[1]), roll_deg=float(angles[2]))
    for s in SIDES:
        out[f"eye_closed_{s}"] = bool(result.blendshapes[_BLINK[s]] >= LIMITS.closed_blink)
    return out


def compute_measures(result: LandmarkResult, scale: IrisScale, image_rgb: np.ndarray | None) -> dict:
    """Series values for one frame; NaN where a value cannot be measured (and the reason in the
    eye status columns, or in ``gate_status`` when the whole frame is withheld). ``image_rgb`` is the
    frame the landmarks came from; without it only the landmark measures are filled."""
    if not result.face:
        return empty_measures()
    px = frame_measures(result.landmarks_px, result.matrix)
    yaw, pitch, roll = head_angles(result.matrix)
    evidence = None if image_rgb is None else eye_evidence(image_rgb, result.landmarks_px)
    blinks = tuple(float(result.blendshapes[_BLINK[s]]) for s in SIDES)
    misfit = mesh_refusal(_geometry(result.landmarks_px, px), evidence, blinks, scale.iris_mm)
    if misfit:  # not a face: it must not calibrate the scale either
        return _refused(misfit, result, scale.mm_per_px, None)
    mm_per_px = scale.update(px[Measure.iris_diameter_left],
                             px[Measure.iris_diameter_right], yaw, face_size(result.landmarks_px))
    if pose := pose_refusal(yaw, pitch):
        return _refused(pose, result, mm_per_px, (yaw, pitch, roll))
    out = empty_measures("no_image" if image_rgb is None else "no_scale")
    out["gate_status"] = OK
    for name, col, v in zip(MEASURE_NAMES, LANDMARK_COLUMNS, px):
        if name in ANGLE_OUTPUTS:
            out[col] = float(v)
        elif name in AREA_OUTPUTS:
            out[col] = float(v * mm_per_px * mm_per_px)
        else:
            out[col] = float(v * mm_per_px)
    out.update(yaw_deg=float(yaw), pitch_deg=float(pitch), roll_deg=float(roll), mm_per_px=float(mm_per_px))
    for s in SIDES:
        out[f"eye_closed_{s}"] = bool(result.blendshapes[_BLINK[s]] >= LIMITS.closed_blink)
        # the landmark corner, until the lip seam beside it is found in the image
        out[f"commissure_height_{s}_mm"] = out[f"commissure_height_raw_{s}_mm"]
    if image_rgb is None or not np.isfinite(mm_per_px):
        return out
    mouth = mouth_corners(image_rgb, result.landmarks_px, result.matrix)
    out["lips_apart"] = bool(mouth[0, MouthSlot.LIP_GAP] > MAX_LIP_GAP)
    for i, s in enumerate(SIDES):
        if np.isfinite(mouth[i, MouthSlot.HEIGHT_SHIFT]):
            out[f"commissure_seam_{s}"] = True
            out[f"commissure_height_{s}_mm"] += float(mouth[i, MouthSlot.HEIGHT_SHIFT] * mm_per_px)
    eyes = eyelids(image_rgb, result.landmarks_px, result.matrix)
    rot = result.matrix[:3, :3]
    # image length of one head-frame unit along the head's vertical axis (foreshortening by pitch/roll)
    k = mm_per_px / max(math.hypot(float(rot[0, 1]), float(rot[1, 1])), 1e-6)
    for i, s in enumerate(SIDES):
        eye = eyes[i]
        status, conf = eye_state(eye, float(result.blendshapes[_BLINK[s]]), yaw, pitch)
        out[f"eye_status_{s}"] = status
        out[f"lid_confidence_{s}"] = conf
        if status == "ok":
            out[f"eye_aperture_{s}_mm"] = float((eye[EyeSlot.T_LOWER] - eye[EyeSlot.T_UPPER]) * k)
            out[f"mrd1_{s}_mm"] = float((eye[EyeSlot.T_CENTRE] - eye[EyeSlot.T_UPPER]) * k)
            out[f"mrd2_{s}_mm"] = float((eye[EyeSlot.T_LOWER] - eye[EyeSlot.T_CENTRE]) * k)
    return out


def compile_kernels() -> None:
    """Compile (or load from numba's cache) every kernel compute_measures calls, so that the first
    real frame is not held up by it."""
    blank = np.zeros((64, 64, 3), np.uint8)
    pts = np.full((478, 3), 32.0)
    frame_measures(pts, np.eye(3))
    head_angles(np.eye(3))
    face_size(pts)
    eyelids(blank, pts, np.eye(3))
    mouth_corners(blank, pts, np.eye(3))
    eye_evidence(blank, pts)


def nan_to_none(values: dict) -> dict:
    """JSON has no NaN: missing values travel as null."""
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in values.items()}
