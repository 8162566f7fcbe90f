"""Planting known weakness in real face images (for validation and for training on synthetic data).

Each function takes an RGB frame and the landmarks the model found on it, and returns a warped copy
together with the exact size of the planted change, so measures can be scored against it.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import landmarks as L

EYES = {
    "left": (L.LEFT_EYE_INNER, L.LEFT_EYE_OUTER, L.LEFT_IRIS_CENTER, L.LEFT_UPPER_LID_CONTOUR, L.LEFT_LOWER_LID_CONTOUR),
    "right": (L.RIGHT_EYE_INNER, L.RIGHT_EYE_OUTER, L.RIGHT_IRIS_CENTER, L.RIGHT_UPPER_LID_CONTOUR,
              L.RIGHT_LOWER_LID_CONTOUR),
}
MOUTH = {"left": L.LEFT_MOUTH_CORNER, "right": L.RIGHT_MOUTH_CORNER}


def _check_side(side: str) -> None:
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")


def fissure_px(landmarks: np.ndarray, side: str) -> float:
    """Image-vertical palpebral fissure at the pupil's column from the landmark lids (pixels)."""
    _check_side(side)
    _, _, iris, up, lo = EYES[side]
    xc = landmarks[iris, 0]
    ou, ol = np.argsort(landmarks[up, 0]), np.argsort(landmarks[lo, 0])
    return float(np.interp(xc, landmarks[lo, 0][ol], landmarks[lo, 1][ol])
                 - np.interp(xc, landmarks[up, 0][ou], landmarks[up, 1][ou]))


def lower_upper_lid(image: np.ndarray, landmarks: np.ndarray, side: str, delta_px: float) -> np.ndarray:
    """Lower one upper lid by ``delta_px`` (image pixels, straight down) at the pupil's column,
    tapering to nothing at the eye corners; the lid skin above stretches, the eye below is covered.

    The cut between moved and unmoved pixels lies a little below the landmark lid, inside the iris,
    so the visible lid margin moves by exactly ``delta_px`` at the pupil's column (for a frontal face).
    """
    _check_side(side)
    if delta_px <= 0:
        return image.copy()
    inner, outer, iris, up, lo = EYES[side]
    h, w = image.shape[:2]
    xs = np.arange(w, dtype=np.float32)
    ou, ol = np.argsort(landmarks[up, 0]), np.argsort(landmarks[lo, 0])
    y_up = np.interp(xs, landmarks[up, 0][ou], landmarks[up, 1][ou])
    y_lo = np.interp(xs, landmarks[lo, 0][ol], landmarks[lo, 1][ol])
    x0, x1 = sorted((float(landmarks[inner, 0]), float(landmarks[outer, 0])))
    xc = float(landmarks[iris, 0])
    prof = np.where((xs > x0) & (xs < x1), np.clip(1 - ((xs - xc) / (x1 - x0) * 2) ** 2, 0, None), 0.0)
    at_pupil = float(np.interp(xc, xs, prof))
    if at_pupil <= 0:
        raise ValueError("the pupil is outside its eye's corners; cannot plant a lid drop")
    d = (delta_px * prof / at_pupil).astype(np.float32)[None, :]
    cut = (y_up + 0.15 * (y_lo - y_up))[None, :] + d
    eye_w = x1 - x0
    top = y_up[None, :] - 0.2 * eye_w  # full shift up to here, then a linear taper of the skin above
    Y, X = np.mgrid[0:h, 0:w].astype(np.float32)
    wgt = np.where(Y <= cut, 1.0, 0.0)
    wgt = np.where(Y < top, np.clip(1 - (top - Y) / (0.4 * eye_w), 0, 1), wgt)
    return cv2.remap(image, X, (Y - d * wgt).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def lower_mouth_corner(image: np.ndarray, landmarks: np.ndarray, side: str, delta_px: float) -> np.ndarray:
    """Lower one mouth corner by ``delta_px`` (image pixels, straight down) with a smooth Gaussian
    falloff (sigma 0.35 of the mouth width) around it."""
    _check_side(side)
    cx, cy = landmarks[MOUTH[side], :2]
    width = float(np.linalg.norm(landmarks[L.LEFT_MOUTH_CORNER, :2] - landmarks[L.RIGHT_MOUTH_CORNER, :2]))
    sigma = 0.35 * width
    h, w = image.shape[:2]
    Y, X = np.mgrid[0:h, 0:w].astype(np.float32)
    wgt = np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * sigma * sigma))
    return cv2.remap(image, X, (Y - delta_px * wgt).astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def rotate(image: np.ndarray, centre: tuple[float, float], degrees: float) -> np.ndarray:
    """Rotate the whole frame about ``centre`` (head roll; positive = counter-clockwise in the image)."""
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def squeeze(image: np.ndarray, centre_x: float, degrees: float) -> np.ndarray:
    """Compress the frame horizontally by cos(degrees) about ``centre_x``: a planar approximation of
    head yaw (a real turn also shows depth, which this does not)."""
    c = float(np.cos(np.radians(degrees)))
    m = np.float32([[c, 0, (1 - c) * centre_x], [0, 1, 0]])
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)
