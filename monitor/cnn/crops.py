"""Face crops aligned by the landmarks: the eye centres go to fixed places in a square crop.

A similarity transform (rotation, uniform scale, shift) maps the patient's right eye centre (image left
in an unmirrored frame) to (EYE_X0·S, EYE_Y·S) and the left eye centre to (EYE_X1·S, EYE_Y·S), so head
roll, distance and position are removed and the brows, eyes and mouth sit at the same crop pixels in
every frame. Sides are never flipped.
"""

from __future__ import annotations

import cv2
import numpy as np

from monitor.measures.face_model import LEFT_EYE_INNER, LEFT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_OUTER

EYE_Y = 0.40
EYE_X0, EYE_X1 = 0.32, 0.68  # patient's right eye, patient's left eye (crop x)
CROP_SIZES = (112, 256)


def eye_centres(landmarks_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right eye centre, left eye centre) in image pixels, from the eye corners."""
    right = landmarks_px[[RIGHT_EYE_INNER, RIGHT_EYE_OUTER], :2].mean(axis=0)
    left = landmarks_px[[LEFT_EYE_INNER, LEFT_EYE_OUTER], :2].mean(axis=0)
    return right, left


def crop_transform(landmarks_px: np.ndarray, size: int) -> np.ndarray:
    """The 2×3 affine matrix from image pixels to crop pixels."""
    right, left = eye_centres(np.asarray(landmarks_px, np.float64))
    src = left - right
    dist = float(np.hypot(*src))
    if not np.isfinite(dist) or dist < 1e-3:
        raise ValueError("the eye centres coincide; cannot align a crop")
    scale = (EYE_X1 - EYE_X0) * size / dist
    angle = np.arctan2(src[1], src[0])
    c, s = scale * np.cos(-angle), scale * np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    target = np.array([EYE_X0 * size, EYE_Y * size])
    shift = target - rot @ right
    return np.hstack([rot, shift[:, None]]).astype(np.float64)


def align_crop(rgb: np.ndarray, landmarks_px: np.ndarray, size: int = 112) -> np.ndarray:
    """The aligned (size, size, 3) uint8 crop of ``rgb`` (an RGB or BGR uint8 image; channels kept)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
    if size < 16:
        raise ValueError(f"crop size must be at least 16 pixels, got {size}")
    m = crop_transform(landmarks_px, size)
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA if m[0, 0] < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
