"""A hand-made 478-point face, and images drawn to match it, for the offline (fast) tests.

The face is laid out in the head frame (pixels; x toward the patient's left, y up, z out of the face),
with every contour that monitor/measures/face_model.py names in a sensible shape: almond eyes whose
lid contours run from the inner to the outer corner, an iris of radius ``IRIS_R`` centred between
the lids, arched brows, closed lips whose inner contours meet at the mouth corners. The other points
are seeded random points inside the face. ``face()`` places it in an image under a head rotation;
``draw()`` paints what a camera would see of the frontal face — skin, a bright sclera between lid
lines, a dark iris disc, lips with a dark seam — with the lid margins, the iris centre and the lip
seam where the caller plants them, so the image-refinement kernels can be scored against the truth.
"""

from __future__ import annotations

import cv2
import numpy as np

from monitor.measures import face_model as L

F = np.diag([1.0, -1.0, -1.0])  # image axes (x right, y down, z away) ↔ OpenGL camera axes

# the frontal face's measures, in head-frame pixels (what frame_measures must give for it)
IRIS_R = 10.0
EYE_INNER_X, EYE_OUTER_X = 27.0, 77.0  # |x| of the inner and outer eye corners
EYE_X = (EYE_INNER_X + EYE_OUTER_X) / 2  # |x| of the iris centres (looking straight ahead)
EYE_HALF = (EYE_OUTER_X - EYE_INNER_X) / 2
UPPER_LID, LOWER_LID = 7.0, 9.0  # landmark lids above / below the iris centre at the pupil's column
BROW = 34.0  # brow above the iris centre at the pupil's column
MOUTH_Y = -100.0  # the mouth corners' height (the iris centres and inner canthi are at y = 0)
MOUTH_HALF = 45.0  # |x| of the mouth corners
LOWER_LIP_Y = -115.0  # the lower lip's midline point (landmark 17)
INNER_CORNER_X = 40.0  # |x| of the inner lip contour's corner (308, 78)
LIP_GAP = 1.0  # half the gap between the inner lips at the midline (closed lips)

CENTRE = np.array([200.0, 170.0, 0.0])  # where the head frame's origin lands in the image
SHAPE = (400, 400)  # image height, width

EXPECTED = {  # frame_measures outputs of the frontal face, by MEASURE_NAMES
    "eye_aperture": UPPER_LID + LOWER_LID,
    "mrd1": UPPER_LID,
    "brow_height": BROW,
    "commissure_height": -MOUTH_Y,
    "intercanthal": 2 * EYE_INNER_X,
    "iris_diameter": 2 * IRIS_R,
    "commissure_excursion": float(np.hypot(MOUTH_HALF, MOUTH_Y - LOWER_LIP_Y)),
    "smile_angle": float(np.degrees(np.arctan2(MOUTH_Y - LOWER_LIP_Y, MOUTH_HALF))),
    "gaze_horizontal": 0.0,
    "gaze_vertical": 0.0,
}


def rot(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """A rotation in the landmarker's OpenGL axes from angles in the project's sign convention."""
    y, p, r = np.radians([yaw, -pitch, roll])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return rz @ ry @ rx


def _arch(x_abs: np.ndarray) -> np.ndarray:
    """1 at the eye's centre, 0 at its corners (a parabola across the eye)."""
    return 1.0 - ((x_abs - EYE_X) / EYE_HALF) ** 2


def head_layout(seed: int = 0) -> np.ndarray:
    """(478, 3) landmarks in the head frame, pixels."""
    rng = np.random.default_rng(seed)
    n = L.N_LANDMARKS
    h = np.empty((n, 3))
    h[:, 0] = rng.uniform(-85, 85, n)
    h[:, 1] = rng.uniform(-135, 50, n)
    h[:, 2] = 30 * (1 - (h[:, 0] / 100) ** 2 - ((h[:, 1] + 40) / 150) ** 2)
    for s, upper, lower, brow, iris, ring in (
            (1, L.LEFT_UPPER_LID_CONTOUR, L.LEFT_LOWER_LID_CONTOUR, L.LEFT_BROW_CONTOUR, L.LEFT_IRIS_CENTER,
             L.LEFT_IRIS_RING),
            (-1, L.RIGHT_UPPER_LID_CONTOUR, L.RIGHT_LOWER_LID_CONTOUR, L.RIGHT_BROW_CONTOUR, L.RIGHT_IRIS_CENTER,
             L.RIGHT_IRIS_RING)):
        xs = EYE_INNER_X + (EYE_OUTER_X - EYE_INNER_X) * np.arange(9) / 8  # inner → outer corner
        h[upper] = np.c_[s * xs, UPPER_LID * _arch(xs), np.full(9, 10.0)]
        h[lower] = np.c_[s * xs, -LOWER_LID * _arch(xs), np.full(9, 10.0)]
        bx = EYE_INNER_X + (EYE_OUTER_X - EYE_INNER_X) * np.arange(5) / 4
        h[brow] = np.c_[s * bx, BROW - 4 + 4 * _arch(bx), np.full(5, 14.0)]
        h[iris] = (s * EYE_X, 0.0, 11.0)
        h[list(ring)] = [(s * EYE_X + IRIS_R, 0, 11), (s * EYE_X, IRIS_R, 11), (s * EYE_X - IRIS_R, 0, 11),
                         (s * EYE_X, -IRIS_R, 11)]
    # closed lips: the inner lips meet at the corners of the inner contour, LIP_GAP apart at the midline
    h[[L.LEFT_MOUTH_CORNER, L.RIGHT_MOUTH_CORNER]] = [(MOUTH_HALF, MOUTH_Y, 12), (-MOUTH_HALF, MOUTH_Y, 12)]
    h[L.LOWER_LIP_MID] = (0, LOWER_LIP_Y, 16)
    h[L.UPPER_LIP_MID] = (0, MOUTH_Y + 12, 16)
    h[L.UPPER_LIP_INNER_MID] = (0, MOUTH_Y + LIP_GAP, 15)
    h[L.LOWER_LIP_INNER_MID] = (0, MOUTH_Y - LIP_GAP, 15)
    xs = np.array([8.0, 16.0, 24.0, 32.0])
    gap = LIP_GAP * (1 - (xs / INNER_CORNER_X) ** 2)
    for s, upper, corner, lower in ((1, [312, 311, 310, 415], 308, [317, 402, 318, 324]),
                                    (-1, [82, 81, 80, 191], 78, [87, 178, 88, 95])):
        h[upper] = np.c_[s * xs, MOUTH_Y + gap, np.full(4, 15.0)]
        h[lower] = np.c_[s * xs, MOUTH_Y - gap, np.full(4, 15.0)]
        h[corner] = (s * INNER_CORNER_X, MOUTH_Y, 14)
    h[168] = (0, 10, 25)  # the nose bridge splits the face's halves (quality.face_light)
    return h


def face(rotation: np.ndarray | None = None, seed: int = 0, centre=CENTRE) -> tuple[np.ndarray, np.ndarray]:
    """(landmarks_px (478, 3), 4×4 facial transformation matrix) of the face turned by ``rotation``
    (OpenGL axes), as the landmarker reports them: image = F·R·head + centre."""
    r = np.eye(3) if rotation is None else np.asarray(rotation, float)
    pts = (F @ r @ head_layout(seed).T).T + np.asarray(centre, float)
    m = np.eye(4)
    m[:3, :3] = r
    return pts, m


def dental_show(half: str = "left") -> float:
    """Shoelace area of one half of the inner lip contour of the frontal face."""
    poly = head_layout()[L.LEFT_INNER_LIP if half == "left" else L.RIGHT_INNER_LIP, :2]
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


# ---- images -----------------------------------------------------------------------------------------
SKIN, SCLERA, IRIS, LIPS, SEAM = (176, 132, 112), (232, 228, 224), (70, 45, 30), (150, 64, 64), (40, 12, 12)
_SS = 8  # supersampling of the drawing


class _Patch:
    """A supersampled canvas for the image rectangle [x0, x0 + w) × [y0, y0 + h), pasted back by area
    averaging (cv2.resize INTER_AREA maps image pixel i to the centres of fine pixels _SS·i … _SS·i + _SS − 1)."""

    def __init__(self, x0: int, y0: int, w: int, h: int) -> None:
        self.x0, self.y0, self.w, self.h = x0, y0, w, h
        self.big = np.empty((h * _SS, w * _SS, 3), np.uint8)
        self.big[:] = SKIN

    def fine(self, xy) -> np.ndarray:
        """Image (x, y) points → integer fine-canvas points."""
        xy = np.asarray(xy, float) - (self.x0, self.y0)
        return np.round(xy * _SS + (_SS - 1) / 2).astype(np.int32)

    def paste(self, img: np.ndarray) -> None:
        img[self.y0:self.y0 + self.h, self.x0:self.x0 + self.w] = cv2.resize(self.big, (self.w, self.h),
                                                                              interpolation=cv2.INTER_AREA)


def draw(upper: tuple[float, float] = (UPPER_LID, UPPER_LID), lower: tuple[float, float] = (LOWER_LID, LOWER_LID),
         iris_shift: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0)),
         seam_shift: tuple[float, float] = (0.0, 0.0), noise: float = 1.5, seed: int = 0) -> np.ndarray:
    """RGB uint8 image of the frontal face. Per eye (left, right): the lid margins ``upper``/``lower``
    image pixels above / below the landmark iris centre at its column, the drawn iris centre moved by
    ``iris_shift`` (image x, y) from the landmark one; per mouth half (left, right), the lip seam
    drawn ``seam_shift`` image pixels below the landmark seam."""
    img = np.empty((*SHAPE, 3), np.uint8)
    img[:] = SKIN
    cx, cy = int(CENTRE[0]), int(CENTRE[1])
    for side, s in enumerate((1, -1)):
        x0 = cx + int(EYE_INNER_X) - 4 if s > 0 else cx - int(EYE_OUTER_X) - 4
        patch = _Patch(x0, cy - 20, int(EYE_OUTER_X - EYE_INNER_X) + 8, 40)
        xs = np.linspace(EYE_INNER_X, EYE_OUTER_X, 81)
        top = np.c_[cx + s * xs, cy - upper[side] * _arch(xs)]
        bottom = np.c_[cx + s * xs, cy + lower[side] * _arch(xs)][::-1]
        opening = np.zeros(patch.big.shape[:2], np.uint8)
        cv2.fillPoly(opening, patch.fine(np.r_[top, bottom])[None], 1)
        disc = np.zeros_like(opening)
        centre = patch.fine((cx + s * EYE_X + iris_shift[side][0], cy + iris_shift[side][1]))
        cv2.circle(disc, (int(centre[0]), int(centre[1])), int(round(IRIS_R * _SS)), 1, -1)
        patch.big[opening > 0] = SCLERA
        patch.big[(opening > 0) & (disc > 0)] = IRIS
        patch.paste(img)
    patch = _Patch(cx - int(MOUTH_HALF) - 4, cy - int(MOUTH_Y) - 20, 2 * int(MOUTH_HALF) + 8, 40)
    xs = np.linspace(-MOUTH_HALF, MOUTH_HALF, 91)
    lips = np.r_[np.c_[cx + xs, cy - MOUTH_Y - 12 * (1 - (xs / MOUTH_HALF) ** 2)],
                 np.c_[cx + xs, cy - MOUTH_Y + 15 * (1 - (xs / MOUTH_HALF) ** 2)][::-1]]
    cv2.fillPoly(patch.big, patch.fine(lips)[None], LIPS)
    for side, s in enumerate((1, -1)):
        y = cy - MOUTH_Y + seam_shift[side]
        a, b = patch.fine((cx, y)), patch.fine((cx + s * MOUTH_HALF, y))
        cv2.line(patch.big, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), SEAM, thickness=2 * _SS)
    patch.paste(img)
    out = img + np.random.default_rng(seed).normal(0, noise, img.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def roll_image(img: np.ndarray, degrees: float) -> np.ndarray:
    """The image turned about CENTRE by ``degrees`` counter-clockwise: what face(rot(0, 0, degrees))
    looks like."""
    m = cv2.getRotationMatrix2D((float(CENTRE[0]), float(CENTRE[1])), degrees, 1.0)
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
