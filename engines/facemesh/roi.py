"""The rotated square region the landmark model looks at: from a detection's eye keypoints or from
the previous frame's landmarks, the crop into the model's input, and the way back to the image.

Conventions follow MediaPipe's rects: the angle is in radians, positive turning clockwise on screen
(y grows downwards), and a rect of side S maps its corners onto the crop's pixel coordinates 0 and N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

ROI_SCALE = 1.5  # the face box (or the landmarks' bounding box) is enlarged by this much
TRACK_EYES = (33, 263)  # outer eye corners: the subject's right, then left


@dataclass(frozen=True, slots=True)
class RotatedRect:
    """A rotated rectangle in image pixels (centre, sides, angle)."""

    cx: float
    cy: float
    width: float
    height: float
    angle: float

    def crop_to_image(self, n: int) -> np.ndarray:
        """The 2×3 affine map from crop pixel coordinates (0..n) to image pixel coordinates."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        kx, ky = self.width / n, self.height / n
        return np.array([[c * kx, -s * ky, self.cx - (c * kx - s * ky) * n / 2],
                         [s * kx, c * ky, self.cy - (s * kx + c * ky) * n / 2]], np.float64)

    def iou(self, other: "RotatedRect") -> float:
        """Overlap of the two rects' unrotated extents, as MediaPipe associates tracked and detected faces."""
        ix = max(0.0, min(self.cx + self.width / 2, other.cx + other.width / 2)
                 - max(self.cx - self.width / 2, other.cx - other.width / 2))
        iy = max(0.0, min(self.cy + self.height / 2, other.cy + other.height / 2)
                 - max(self.cy - self.height / 2, other.cy - other.height / 2))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0


def _angle(start: np.ndarray, end: np.ndarray) -> float:
    """Rotation that makes the start→end vector horizontal (pixels), in (-π, π]."""
    a = -math.atan2(-(float(end[1]) - float(start[1])), float(end[0]) - float(start[0]))
    return math.atan2(math.sin(a), math.cos(a))


def rect_from_detection(box: tuple[float, float, float, float], keypoints: np.ndarray, width: int, height: int,
                        eyes: tuple[int, int], scale: float = ROI_SCALE) -> RotatedRect:
    """The region for a detection (normalised box and keypoints): the box enlarged by ``scale``, turned
    so the keypoints ``eyes`` (the subject's right eye, then left) are level."""
    x0, y0, bw, bh = box
    kp = np.asarray(keypoints, np.float64) * (width, height)
    angle = _angle(kp[eyes[0]], kp[eyes[1]])
    return RotatedRect((x0 + bw / 2) * width, (y0 + bh / 2) * height, bw * width * scale, bh * height * scale, angle)


def rect_from_landmarks(points_px: np.ndarray, scale: float = ROI_SCALE, eyes: tuple[int, int] = TRACK_EYES) -> RotatedRect:
    """The region for the next frame from this frame's landmarks (pixels): the landmarks' bounding
    box, square on its longer side, enlarged by ``scale``, turned so the outer eye corners are level."""
    xy = np.asarray(points_px[:, :2], np.float64)
    lo, hi = xy.min(0), xy.max(0)
    angle = _angle(xy[eyes[0]], xy[eyes[1]])
    side = max(hi[0] - lo[0], hi[1] - lo[1]) * scale
    return RotatedRect((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, side, side, angle)


def crop(rgb: np.ndarray, rect: RotatedRect, n: int, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """The rect's content as an (n, n, 3) uint8 image, upright."""
    m = rect.crop_to_image(n)
    return cv2.warpAffine(rgb, m, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border)


def project(points_crop: np.ndarray, rect: RotatedRect, n: int, image_size: tuple[int, int]) -> np.ndarray:
    """Crop-pixel landmarks (K, 3) back to image pixels (width, height = ``image_size``).

    z is scaled as MediaPipe scales it: by the length the crop's x axis takes in coordinates
    normalised by the image's width and height, times the width. For a region turned by θ in a
    W×H image that is the side × √(cos²θ + (sin θ · W/H)²), which exceeds the side when the face is
    tilted in a wide image (by 1.4% at 7° in 16:9). The tracked face's z then agrees with MediaPipe's."""
    m = rect.crop_to_image(n)
    out = np.empty_like(points_crop, dtype=np.float32)
    out[:, :2] = points_crop[:, :2] @ m[:, :2].T + m[:, 2]
    w, h = image_size
    x_axis = math.hypot(math.cos(rect.angle), math.sin(rect.angle) * w / h)
    out[:, 2] = points_crop[:, 2] * (rect.width / n) * x_axis
    return out
