"""Step illustrations: a face drawn from the 478-point mesh, making each step's expression.

The neutral mesh is MediaPipe's own landmarks of the sample portrait (``single_face.jpg``), found
once and cached; each step moves groups of mesh points with smooth (Gaussian) falloff: lids onto
each other to close an eye, brows up or down, mouth corners up, out or down, the jaw down, the lips
together for a pucker, the irises toward a gaze direction. The drawing is the mesh's contours in
the patient's frame: image right is the patient's left, as a camera sees them (``mirror`` flips it
to match a mirrored preview).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from engines import assets
from monitor.measures import face_model as L
from monitor.protocol import steps as S

SIZE = 320
UP = np.array([0.0, -1.0])
LEFT = np.array([1.0, 0.0])  # toward the patient's left (image right, unmirrored)

# point groups (patient's left / right)
_UPPER = {"left": L.LEFT_UPPER_LID_CONTOUR, "right": L.RIGHT_UPPER_LID_CONTOUR}
_LOWER = {"left": L.LEFT_LOWER_LID_CONTOUR, "right": L.RIGHT_LOWER_LID_CONTOUR}
_BROW = {"left": L.LEFT_BROW_CONTOUR, "right": L.RIGHT_BROW_CONTOUR}
_INNER_BROW = {"left": 336, "right": 107}
_CORNER = {"left": L.LEFT_MOUTH_CORNER, "right": L.RIGHT_MOUTH_CORNER}
_IRIS = {"left": (473, *L.LEFT_IRIS_RING), "right": (468, *L.RIGHT_IRIS_RING)}
_LOWER_LIP = (14, 17, 87, 317, 178, 402, 84, 314, 181, 405, 91, 321, 88, 318, 95, 324)
_UPPER_LIP = (0, 13, 37, 267, 39, 269, 82, 312)
_NOSE_WINGS = (48, 278, 129, 358)


@functools.cache
def neutral_mesh() -> np.ndarray:
    """(478, 2) neutral landmarks, centred and scaled to the drawing (cached on disk after the first run)."""
    cached = assets.cache_dir() / "illustration_mesh.npy"
    if cached.exists():
        pts = np.load(cached)
    else:
        from engines.mediapipe_backend import MediaPipeLandmarker  # lazy: mediapipe

        image = cv2.imread(str(assets.sample_path("single_face.jpg", progress=False)))
        with MediaPipeLandmarker(max_faces=1) as runner:
            result = runner.infer(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 1)
        if not result.face:
            raise RuntimeError("the sample portrait gave no face for the illustrations")
        pts = result.landmarks_px[:, :2].astype(np.float64)
        np.save(cached, pts)
    pts = pts - pts.mean(0)
    pts *= 0.8 * SIZE / np.ptp(pts[:, 1])
    return pts + SIZE / 2


def _pull(pts: np.ndarray, anchor: np.ndarray, delta: np.ndarray, radius: float) -> None:
    """Move points near ``anchor`` by ``delta``, fading with distance (Gaussian of ``radius``)."""
    d2 = ((pts - anchor) ** 2).sum(1)
    pts += np.exp(-d2 / (2 * radius * radius))[:, None] * delta


def _scale(pts: np.ndarray) -> float:
    return float(np.linalg.norm(pts[L.LEFT_EYE_OUTER] - pts[L.RIGHT_EYE_OUTER]))


def _close_eye(pts: np.ndarray, side: str) -> None:
    """The upper lid down onto the lower one; the iris hidden behind them."""
    pts[_UPPER[side]] = pts[_LOWER[side]]
    pts[list(_IRIS[side])] = np.nan


def _widen_eye(pts: np.ndarray, side: str, k: float) -> None:
    up = _UPPER[side]
    centre = pts[_IRIS[side][0]]
    pts[up] += (pts[up] - centre) * np.array([0.0, k])


def _brows(pts: np.ndarray, dy: float, inner_only: bool = False, squeeze: float = 0.0) -> None:
    s = _scale(pts)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        anchor = pts[_INNER_BROW[side]] if inner_only else pts[_BROW[side]].mean(0)
        _pull(pts, anchor, UP * dy * s + LEFT * (-sign) * squeeze * s, 0.12 * s if inner_only else 0.2 * s)


def _corners(pts: np.ndarray, up: float, out: float) -> None:
    s = _scale(pts)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        _pull(pts, pts[_CORNER[side]].copy(), (UP * up + LEFT * sign * out) * s, 0.12 * s)


def _jaw(pts: np.ndarray, down: float) -> None:
    s = _scale(pts)
    _pull(pts, pts[152].copy(), -UP * down * s * 0.7, 0.6 * s)  # the chin, and the jaw with it
    pts[list(_LOWER_LIP)] += -UP * down * s * 0.3


def _gaze(pts: np.ndarray, direction: tuple[int, int]) -> None:
    dx, dy = direction
    for side in ("left", "right"):
        ring = pts[list(_IRIS[side])]
        r = float(np.nanmax(np.linalg.norm(ring - ring[0], axis=1)))
        pts[list(_IRIS[side])] += (LEFT * dx + UP * dy) * r * 0.9


def _pucker(pts: np.ndarray) -> None:
    centre = (pts[13] + pts[14]) / 2
    lips = np.unique(np.array([(c.start, c.end) for c in _lip_connections()]).ravel())
    pts[lips] = centre + (pts[lips] - centre) * np.array([0.55, 0.9])


@functools.cache
def _lip_connections():
    from mediapipe.tasks.python.vision import FaceLandmarksConnections as C

    return tuple(C.FACE_LANDMARKS_LIPS)


def pose(step: str) -> np.ndarray:
    """The neutral mesh moved into ``step``'s expression; NaN marks points hidden by a closed lid."""
    pts = neutral_mesh().copy()
    s = _scale(pts)
    if step in (S.EYES_CLOSED, S.EYES_CLOSED_FIRMLY):
        _close_eye(pts, "left")
        _close_eye(pts, "right")
        if step == S.EYES_CLOSED_FIRMLY:
            _brows(pts, -0.08, squeeze=0.04)
    elif step == S.LEFT_EYE_CLOSED:
        _close_eye(pts, "left")
    elif step == S.RIGHT_EYE_CLOSED:
        _close_eye(pts, "right")
    elif step == "anger":
        _brows(pts, -0.1, squeeze=0.06)
        _corners(pts, -0.02, -0.03)
    elif step == "fear":
        _brows(pts, 0.12, inner_only=True)
        _widen_eye(pts, "left", 0.5)
        _widen_eye(pts, "right", 0.5)
        _corners(pts, -0.03, 0.08)
        _jaw(pts, 0.05)
    elif step == "happiness":
        _corners(pts, 0.1, 0.08)
    elif step == "surprise":
        _brows(pts, 0.14)
        _widen_eye(pts, "left", 0.5)
        _widen_eye(pts, "right", 0.5)
        _jaw(pts, 0.18)
    elif step == "disgust":
        _brows(pts, -0.06)
        for i in _UPPER_LIP + _NOSE_WINGS:
            pts[i] += UP * 0.04 * s
        _corners(pts, -0.04, 0.0)
    elif step == "sadness":
        _brows(pts, 0.08, inner_only=True)
        _corners(pts, -0.08, 0.0)
    elif step == S.SHOWING_TEETH:
        _corners(pts, 0.06, 0.12)
        _jaw(pts, 0.05)
    elif step == S.RAISING_EYEBROWS:
        _brows(pts, 0.16)
    elif step in (S.MOUTH_OPEN, S.TONGUE_PROTRUSION):
        _jaw(pts, 0.3)
    elif step == S.WHISTLING:
        _pucker(pts)
    elif step in S.GAZE_DIRECTIONS:
        _gaze(pts, S.GAZE_DIRECTIONS[step])
    return pts


@functools.cache
def _connections() -> tuple[tuple[int, int], ...]:
    from mediapipe.tasks.python.vision import FaceLandmarksConnections as C

    groups = (C.FACE_LANDMARKS_FACE_OVAL, C.FACE_LANDMARKS_LIPS, C.FACE_LANDMARKS_LEFT_EYE,
              C.FACE_LANDMARKS_RIGHT_EYE, C.FACE_LANDMARKS_LEFT_EYEBROW, C.FACE_LANDMARKS_RIGHT_EYEBROW,
              C.FACE_LANDMARKS_NOSE)
    return tuple((c.start, c.end) for g in groups for c in g)


def draw(step: str, mirror: bool = False) -> np.ndarray:
    """An RGB (SIZE, SIZE, 3) drawing of the face making ``step``'s expression."""
    pts = pose(step)
    img = np.full((SIZE, SIZE, 3), 250, np.uint8)
    shade = np.array([p for p in pts if np.isfinite(p).all()], np.int32)
    cv2.fillConvexPoly(img, cv2.convexHull(shade[: L.N_LANDMARKS - 10]), (200, 218, 240), cv2.LINE_AA)  # BGR skin
    for a, b in _connections():
        if np.isfinite(pts[a]).all() and np.isfinite(pts[b]).all():
            cv2.line(img, tuple(np.int32(pts[a])), tuple(np.int32(pts[b])), (60, 60, 70), 2, cv2.LINE_AA)
    if step in (S.MOUTH_OPEN, S.TONGUE_PROTRUSION, "surprise", S.SHOWING_TEETH, "fear"):
        inner = np.int32(pts[np.concatenate([L.LEFT_INNER_LIP, L.RIGHT_INNER_LIP[::-1]])])
        cv2.fillPoly(img, [inner], (255, 255, 255) if step == S.SHOWING_TEETH else (70, 40, 50), cv2.LINE_AA)
        if step == S.TONGUE_PROTRUSION:
            c = (pts[13] + pts[14]) / 2
            w = np.linalg.norm(pts[L.LEFT_MOUTH_CORNER] - pts[L.RIGHT_MOUTH_CORNER]) * 0.28
            cv2.ellipse(img, (int(c[0]), int(c[1] + w * 1.2)), (int(w), int(w * 1.5)), 0, 0, 360, (140, 120, 225),
                        -1, cv2.LINE_AA)
    for side in ("left", "right"):
        iris = pts[list(_IRIS[side])]
        if np.isfinite(iris).all():
            r = float(np.linalg.norm(iris[1:] - iris[0], axis=1).mean())
            cv2.circle(img, tuple(np.int32(iris[0])), max(2, int(r)), (90, 70, 50), -1, cv2.LINE_AA)
    if step in S.GAZE_DIRECTIONS:  # an arrow toward where to look
        dx, dy = S.GAZE_DIRECTIONS[step]
        v = (LEFT * dx + UP * dy) / np.hypot(dx, dy)
        c = np.array([SIZE / 2, SIZE * 0.08])
        cv2.arrowedLine(img, tuple(np.int32(c - v * 22)), tuple(np.int32(c + v * 22)), (200, 60, 40), 3,
                        cv2.LINE_AA, tipLength=0.4)
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img[:, ::-1].copy() if mirror else img
