"""Is this frame good enough to count toward a protocol step? (pure computation; docs/app.md, "Quality")

Checks, in the order a person should fix them: exactly one face; the whole face in the picture;
distance (the iris must be large enough for millimetre measures, and the face not so close that it
fills the frame); light (not too dark, not washed out, not lit from one side, which reads as
asymmetry); head pose (near frontal, the limits the measures were validated within); and nothing
covering the eyes (an eye that should be open cannot be measured). Each failure is a short code and
one plain-language prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monitor.measures.face_model import SIDES


@dataclass(frozen=True)
class QualityLimits:
    max_yaw_deg: float = 12.0  # validation: lid measures move ≤ 0.42 mm at the ±15° renders
    max_pitch_deg: float = 15.0
    max_roll_deg: float = 15.0  # validation: roll of 20° moves MRD1 ≤ 0.15 mm
    min_iris_px: float = 12.0  # ~1 mm a pixel; validation ran at 13.6 px (sample video) with 0.05–0.22 mm jitter
    max_face_fraction: float = 0.85  # face height / image height above this: too close
    edge_margin: float = 0.02  # landmarks this close to the border (fraction of the side): face cut off
    min_luma: float = 60.0  # mean face brightness, 0–255
    max_luma: float = 215.0
    max_side_ratio: float = 1.6  # brighter / darker half of the face


LIMITS = QualityLimits()

PROMPTS = {
    "no_face": "No face found. Sit in front of the camera, facing it.",
    "several_faces": "More than one face is in view. Make sure only you are in the picture.",
    "cut_off": "Part of your face is outside the picture. Move to the centre of the picture.",
    "too_far": "You are too far from the camera. Move closer.",
    "too_close": "You are too close to the camera. Move back a little.",
    "too_dark": "It is too dark. Turn on a light in front of you.",
    "too_bright": "The picture is washed out. Move away from bright light behind or in front of you.",
    "uneven_light": "One side of your face is in shadow. Face the light so both sides are lit evenly.",
    "turned": "Face the camera straight on (your head is turned).",
    "tilted_up_down": "Hold your head level: not tilted up or down.",
    "tilted_sideways": "Hold your head upright: not tilted to one side.",
    "eyes_covered": "Your eyes cannot be seen clearly. Move hair or glasses glare away from them.",
    "no_frames": "No picture is arriving from the camera.",
}


@dataclass(frozen=True)
class FaceLight:
    """Brightness of the face, from the image: mean luma over the face box, and of each half."""

    mean: float
    left: float  # the patient's left half (image right, unmirrored)
    right: float


@dataclass(frozen=True)
class Quality:
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def prompt(self) -> str:
        return PROMPTS[self.problems[0]] if self.problems else "Good: hold still."

    @property
    def code(self) -> str:
        """What the series keeps in its ``quality`` column: "" when good, else the codes."""
        return ",".join(self.problems)


NO_FRAMES = Quality(("no_frames",))


def face_light(image: np.ndarray, landmarks_px: np.ndarray) -> FaceLight | None:
    """Mean brightness of the face box (and its two halves) in a BGR or gray uint8 image."""
    h, w = image.shape[:2]
    x0, y0 = np.floor(landmarks_px[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(landmarks_px[:, :2].max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    box = image[y0:y1, x0:x1]
    if box.ndim == 3:  # BGR → luma (BT.601), on a subsample: brightness needs no detail
        step = max(1, min(box.shape[:2]) // 64)
        box = box[::step, ::step].astype(np.float32) @ np.array([0.114, 0.587, 0.299], np.float32)
    mid = int(round(landmarks_px[168, 0])) - x0  # the nose bridge splits the face's halves
    mid = int(np.clip(mid * box.shape[1] / max(x1 - x0, 1), 1, box.shape[1] - 1))
    image_left, image_right = box[:, :mid], box[:, mid:]
    # unmirrored: the patient's left is on the image's right
    return FaceLight(float(box.mean()), float(image_right.mean()), float(image_left.mean()))


def assess(row: dict, light: FaceLight | None, landmarks_px: np.ndarray | None, image_shape: tuple[int, int],
           *, eyes_should_be_open: bool = True, iris_mm: float = 11.7, limits: QualityLimits = LIMITS) -> Quality:
    """Quality of one frame from its series row (faces, pose, mm_per_px, eye status), its
    landmarks and the face's brightness. ``iris_mm`` is the iris diameter the scale assumes, so
    that iris_mm / mm_per_px is the iris width in pixels."""
    faces = int(row.get("faces") or 0)
    if not row.get("face") or faces == 0 or landmarks_px is None:
        return Quality(("no_face",))
    if row.get("gate_status") not in (None, "ok", "pose"):  # a mesh the plausibility gates refused (not on a face)
        return Quality(("no_face",))
    problems: list[str] = []
    if faces > 1:
        problems.append("several_faces")
    h, w = image_shape
    xy = landmarks_px[:, :2]
    mx, my = limits.edge_margin * w, limits.edge_margin * h
    if xy[:, 0].min() < mx or xy[:, 1].min() < my or xy[:, 0].max() > w - mx or xy[:, 1].max() > h - my:
        problems.append("cut_off")
    mm_per_px = row.get("mm_per_px")
    if mm_per_px and math.isfinite(mm_per_px) and iris_mm / mm_per_px < limits.min_iris_px:
        problems.append("too_far")
    if (xy[:, 1].max() - xy[:, 1].min()) / h > limits.max_face_fraction:
        problems.append("too_close")
    if light is not None:
        if light.mean < limits.min_luma:
            problems.append("too_dark")
        elif light.mean > limits.max_luma:
            problems.append("too_bright")
        elif max(light.left, light.right) > limits.max_side_ratio * max(min(light.left, light.right), 1.0):
            problems.append("uneven_light")
    for key, lim, code in (("yaw_deg", limits.max_yaw_deg, "turned"), ("pitch_deg", limits.max_pitch_deg, "tilted_up_down"),
                           ("roll_deg", limits.max_roll_deg, "tilted_sideways")):
        v = row.get(key)
        if v is not None and math.isfinite(v) and abs(v) > lim:
            problems.append(code)
    if eyes_should_be_open:
        statuses = [row.get(f"eye_status_{s}") for s in SIDES]
        if all(st in ("low_contrast", "out_of_frame") for st in statuses):
            problems.append("eyes_covered")
    return Quality(tuple(problems))
