"""MediaPipe Face Mesh indices used by the measures (DESIGN §2). Sides are anatomical: LEFT is the
patient's left (image right in an unmirrored frame). Contours run from the inner to the outer end."""

from enum import IntEnum

import numpy as np

from engines.base import BLENDSHAPE_NAMES

# eye corners (inner, outer)
LEFT_EYE_INNER, LEFT_EYE_OUTER = 362, 263
RIGHT_EYE_INNER, RIGHT_EYE_OUTER = 133, 33
# lid midpoints
LEFT_UPPER_LID, RIGHT_UPPER_LID = 386, 159
LEFT_LOWER_LID, RIGHT_LOWER_LID = 374, 145
# iris centres and rings (horizontal pair first)
LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER = 473, 468
LEFT_IRIS_RING = (474, 475, 476, 477)
RIGHT_IRIS_RING = (469, 470, 471, 472)
# mouth corners; lip midline points (outer upper, outer lower, inner upper, inner lower)
LEFT_MOUTH_CORNER, RIGHT_MOUTH_CORNER = 291, 61
UPPER_LIP_MID, LOWER_LIP_MID, UPPER_LIP_INNER_MID, LOWER_LIP_INNER_MID = 0, 17, 13, 14

LEFT_UPPER_LID_CONTOUR = np.array([362, 398, 384, 385, 386, 387, 388, 466, 263], np.int64)
LEFT_LOWER_LID_CONTOUR = np.array([362, 382, 381, 380, 374, 373, 390, 249, 263], np.int64)
RIGHT_UPPER_LID_CONTOUR = np.array([133, 173, 157, 158, 159, 160, 161, 246, 33], np.int64)
RIGHT_LOWER_LID_CONTOUR = np.array([133, 155, 154, 153, 145, 144, 163, 7, 33], np.int64)
LEFT_BROW_CONTOUR = np.array([336, 296, 334, 293, 300], np.int64)
RIGHT_BROW_CONTOUR = np.array([107, 66, 105, 63, 70], np.int64)

# each half of the inner lip contour as a closed polygon: upper midpoint → corner → lower midpoint
LEFT_INNER_LIP = np.array([13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14], np.int64)
RIGHT_INNER_LIP = np.array([13, 82, 81, 80, 191, 78, 95, 88, 178, 87, 14], np.int64)
# each half of the lip seam, upper and lower inner lip from the midline out to the (outer) mouth corner
LEFT_UPPER_SEAM = np.array([13, 312, 311, 310, 415, 308, 291], np.int64)
LEFT_LOWER_SEAM = np.array([14, 317, 402, 318, 324, 308, 291], np.int64)
RIGHT_UPPER_SEAM = np.array([13, 82, 81, 80, 191, 78, 61], np.int64)
RIGHT_LOWER_SEAM = np.array([14, 87, 178, 88, 95, 78, 61], np.int64)

# points that expressions, blinks and gaze hardly move — nose bridge and tip, forehead, temples —
# whose spread gives the face's size in the image (calibration/scale.py)
RIGID = np.array([168, 6, 197, 195, 5, 4, 1, 10, 151, 109, 338, 234, 454, 127, 356, 162, 389, 21, 251], np.int64)

N_LANDMARKS = 478
SIDES = ("left", "right")  # the order of every per-side pair in the project

# MediaPipe's 52 blendshapes by name, in the model's output order: blendshapes[Blendshape.eyeBlinkLeft].
# Sides are the patient's own (eyeBlinkLeft is the patient's left eye). "_neutral" is ``neutral`` here.
Blendshape = IntEnum("Blendshape", {name.lstrip("_"): i for i, name in enumerate(BLENDSHAPE_NAMES)})

# The 478-point mesh seen as the 68-point iBUG 300-W layout (jaw 0–16, brows 17–26, nose 27–35,
# eyes 36–47, mouth 48–67; iBUG numbers from the image's left, i.e. the patient's right). The
# 51-point layout is the same without the jaw line (iBUG 17–67), as used by Parra-Dominguez et al.
IBUG68 = np.array([
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,  # jaw
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
], np.int64)
IBUG51 = IBUG68[17:]


def ibug68(landmarks: np.ndarray, tilt_correct: bool = False) -> np.ndarray:
    """(68, D) view of (478, D) landmarks; with tilt_correct, 2-D points are rotated about the
    midpoint of the iris centres so that the line through them is horizontal (Emotrics' correction)."""
    pts = np.asarray(landmarks)
    if pts.ndim != 2 or pts.shape[0] != N_LANDMARKS:
        raise ValueError(f"landmarks must have shape (478, D), got {pts.shape}")
    out = pts[IBUG68].astype(float)
    return level_by_irises(out, pts) if tilt_correct else out


def ibug51(landmarks: np.ndarray, tilt_correct: bool = False) -> np.ndarray:
    return ibug68(landmarks, tilt_correct)[17:]


def level_by_irises(points: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Rotate the x, y of ``points`` so the line from the right to the left iris centre is horizontal."""
    a, b = landmarks[RIGHT_IRIS_CENTER, :2].astype(float), landmarks[LEFT_IRIS_CENTER, :2].astype(float)
    ang = np.arctan2(b[1] - a[1], b[0] - a[0])
    c, s = np.cos(-ang), np.sin(-ang)
    mid = (a + b) / 2
    out = np.array(points, float)
    xy = out[:, :2] - mid
    out[:, 0] = c * xy[:, 0] - s * xy[:, 1] + mid[0]
    out[:, 1] = s * xy[:, 0] + c * xy[:, 1] + mid[1]
    return out
