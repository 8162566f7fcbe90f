"""The one landmark overlay drawer: the face mesh's contour points and both irises drawn on a frame.

Used by the app's preview (monitor.app.preview) and the command line's preview window
(monitor.cli.live), so both show the same drawing.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from monitor.measures import face_model as L

OK_COLOUR, BAD_COLOUR = (80, 220, 80), (0, 160, 255)  # BGR: quality good / a problem


@functools.cache
def contour_points() -> np.ndarray:
    """Indices of the mesh points on MediaPipe's face contours (lips, eyes, brows, oval)."""
    from mediapipe.tasks.python.vision import FaceLandmarksConnections as C  # lazy: mediapipe is slow to import

    return np.unique(np.array([(c.start, c.end) for c in C.FACE_LANDMARKS_CONTOURS]).ravel())


def draw_landmarks(view: np.ndarray, landmarks, scale: float = 1.0, colour: tuple = OK_COLOUR) -> np.ndarray:
    """Draw the contour points and iris circles of ``landmarks`` (478, ≥2 image pixels, multiplied by
    ``scale`` for a resized ``view``) onto the BGR image ``view`` in place; returns it."""
    pts = np.int32(np.asarray(landmarks)[:, :2] * scale)
    for x, y in pts[contour_points()]:
        cv2.circle(view, (int(x), int(y)), 1, colour, -1, cv2.LINE_AA)
    for centre, ring in ((L.LEFT_IRIS_CENTER, L.LEFT_IRIS_RING), (L.RIGHT_IRIS_CENTER, L.RIGHT_IRIS_RING)):
        r = float(np.linalg.norm(pts[list(ring)] - pts[centre], axis=1).mean())
        cv2.circle(view, (int(pts[centre][0]), int(pts[centre][1])), max(1, int(round(r))), colour, 1, cv2.LINE_AA)
    return view
