"""Planting known weakness in real face images (for validation and for training on synthetic data).

Each function takes an RGB frame and the landmarks the model found on it, and returns a warped copy
together with the exact size of the planted change, so measures can be scored against it.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from monitor.measures import face_model as L

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


_MOUTH_CENTRE = L.N_LANDMARKS  # an extra vertex between the inner lips, for the mouth's fan


@functools.lru_cache(maxsize=1)
def face_triangles() -> np.ndarray:
    """MediaPipe's face-mesh tessellation, with its three holes filled: a fan from each iris centre
    round its lid contour, and one from the point between the inner lips round the inner lip
    contour. (T, 3) vertex indices; index N_LANDMARKS is that mouth point."""
    from mediapipe.tasks.python.vision import FaceLandmarksConnections

    t = FaceLandmarksConnections.FACE_LANDMARKS_TESSELATION
    tris = [(t[i].start, t[i + 1].start, t[i + 2].start) for i in range(0, len(t), 3)]
    for side in ("left", "right"):
        _, _, iris, up, lo = EYES[side]
        ring = list(up) + list(lo[::-1])[1:-1]
        tris += [(iris, ring[k], ring[(k + 1) % len(ring)]) for k in range(len(ring))]
    ring = list(L.LEFT_INNER_LIP) + list(L.RIGHT_INNER_LIP[::-1])[1:-1]
    tris += [(_MOUTH_CENTRE, ring[k], ring[(k + 1) % len(ring)]) for k in range(len(ring))]
    return np.array(tris, np.int64)


def turn_head(image: np.ndarray, landmarks: np.ndarray, degrees: float) -> np.ndarray:
    """Turn the face about the image's vertical axis through its centre by ``degrees`` (head yaw):
    the face is rendered again from its own 3D landmark mesh (x, y in pixels, z scaled like x),
    textured with this frame's pixels, orthographically, nearest surface first. Where the unturned
    face showed and the turned one does not, the frame is inpainted from its surroundings.
    """
    pts = np.vstack([np.asarray(landmarks, float), (landmarks[L.UPPER_LIP_INNER_MID] + landmarks[L.LOWER_LIP_INNER_MID]) / 2])
    c = pts[: L.N_LANDMARKS].mean(0)
    a = np.radians(degrees)
    x, z = pts[:, 0] - c[0], pts[:, 2] - c[2]
    dst = np.stack([c[0] + x * np.cos(a) + z * np.sin(a), pts[:, 1]], 1)
    depth_v = -x * np.sin(a) + z * np.cos(a)  # smaller is nearer the camera, as in MediaPipe
    src = pts[:, :2]
    h, w = image.shape[:2]
    map_y, map_x = np.mgrid[0:h, 0:w].astype(np.float32)
    depth = np.full((h, w), np.inf)
    for tri in face_triangles():
        d, s = dst[tri], src[tri]
        m = np.array([d[1] - d[0], d[2] - d[0]]).T
        det_d = np.linalg.det(m)
        det_s = np.linalg.det(np.array([s[1] - s[0], s[2] - s[0]]).T)
        if det_d * det_s <= 1e-9:  # seen from behind after the turn, or degenerate
            continue
        x0, y0 = np.maximum(np.floor(d.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(d.max(0)).astype(int), [w - 1, h - 1])
        if x1 < x0 or y1 < y0:
            continue
        gy, gx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        uv = np.linalg.solve(m, np.stack([gx.ravel() - d[0, 0], gy.ravel() - d[0, 1]]))
        bary = np.vstack([1 - uv.sum(0), uv])
        zz = depth_v[tri] @ bary
        win = depth[y0:y1 + 1, x0:x1 + 1].ravel()
        take = (bary.min(0) >= -1e-6) & (zz < win)
        if not take.any():
            continue
        iy, ix = gy.ravel()[take], gx.ravel()[take]
        depth[iy, ix] = zz[take]
        map_x[iy, ix] = s[:, 0] @ bary[:, take]
        map_y[iy, ix] = s[:, 1] @ bary[:, take]
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    was_face = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(was_face, cv2.convexHull(np.round(src[: L.N_LANDMARKS]).astype(np.int32)), 1)
    uncovered = (was_face > 0) & ~np.isfinite(depth)
    if uncovered.any():
        hole = cv2.dilate(uncovered.astype(np.uint8), np.ones((3, 3), np.uint8))
        out = cv2.inpaint(out, hole, 5, cv2.INPAINT_TELEA)
    return out
