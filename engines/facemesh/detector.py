"""The short-range face detector's input and output: letterboxing, SSD anchors, box decoding and
weighted non-maximum suppression (the BlazeFace scheme MediaPipe's face detector uses).

Pure numpy/OpenCV; coordinates are normalised to the original image (0..1) on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

INPUT_SIZE = 128
NUM_BOXES = 896
NUM_COORDS = 16  # box (cx, cy, w, h) then 6 keypoints (x, y)
NUM_KEYPOINTS = 6
RIGHT_EYE, LEFT_EYE = 0, 1  # keypoint indices: the subject's right eye is on the image's left
SCORE_CLIP = 100.0
NMS_IOU = 0.5


@dataclass(frozen=True, slots=True)
class Detection:
    """One face: score in 0..1, box (xmin, ymin, width, height) and keypoints (6, 2), normalised to the image."""

    score: float
    box: tuple[float, float, float, float]
    keypoints: np.ndarray

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was fitted into the square input: scale and padding, as fractions of the input."""

    pad_x: float
    pad_y: float

    def unpad(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (x - self.pad_x) / (1 - 2 * self.pad_x), (y - self.pad_y) / (1 - 2 * self.pad_y)


@lru_cache(maxsize=1)
def anchors() -> np.ndarray:
    """(896, 2) anchor centres: 16×16 cells × 2 anchors (stride 8), then 8×8 cells × 6 anchors (three
    stride-16 layers of 2 each). Anchor sizes are fixed at 1, so only centres matter."""
    out = []
    for cells, per_cell in ((16, 2), (8, 6)):
        c = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        yy, xx = np.meshgrid(c, c, indexing="ij")
        centres = np.stack([xx.ravel(), yy.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
    a = np.concatenate(out)
    assert a.shape == (NUM_BOXES, 2)
    return a


def letterbox(rgb: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """The image fitted into a size×size square keeping its aspect ratio (centred, zero padding,
    bilinear), as float32 in [-1, 1] with shape (size, size, 3)."""
    h, w = rgb.shape[:2]
    side = max(h, w)
    k = size / side
    m = np.array([[k, 0.0, (side - w) / 2 * k], [0.0, k, (side - h) / 2 * k]])
    canvas = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    pad = Letterbox((side - w) / 2 / side, (side - h) / 2 / side)
    return canvas.astype(np.float32) * (2.0 / 255.0) - 1.0, pad


def decode(regressors: np.ndarray, scores: np.ndarray, pad: Letterbox, min_score: float) -> list[Detection]:
    """Boxes above ``min_score`` from one image's raw outputs ((896, 16) and (896,) or (896, 1) logits),
    merged by weighted non-maximum suppression and mapped back out of the letterbox."""
    raw = np.clip(np.asarray(scores, np.float64).reshape(-1), -SCORE_CLIP, SCORE_CLIP)
    prob = 1.0 / (1.0 + np.exp(-raw))
    keep = np.flatnonzero(prob >= min_score)
    if keep.size == 0:
        return []
    reg = np.asarray(regressors, np.float32).reshape(NUM_BOXES, NUM_COORDS)[keep] / INPUT_SIZE
    a = anchors()[keep]
    cx, cy = reg[:, 0] + a[:, 0], reg[:, 1] + a[:, 1]
    w, h = reg[:, 2], reg[:, 3]
    kx = reg[:, 4::2] + a[:, :1]
    ky = reg[:, 5::2] + a[:, 1:]
    x0, y0 = pad.unpad(cx - w / 2, cy - h / 2)
    x1, y1 = pad.unpad(cx + w / 2, cy + h / 2)
    kx, ky = pad.unpad(kx, ky)
    boxes = np.stack([x0, y0, x1, y1], axis=1)
    kps = np.stack([kx, ky], axis=2)
    return weighted_nms(boxes, kps, prob[keep])


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou_threshold: float = NMS_IOU) -> list[Detection]:
    """Weighted NMS: the best remaining box absorbs every box overlapping it by more than the
    threshold; the merged box and keypoints are the score-weighted mean of the group, the score is
    the best one's. Boxes are (x0, y0, x1, y1)."""
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.arange(len(scores))
    out: list[Detection] = []
    while remaining.size:
        best = remaining[0]
        overlap = _iou(boxes[best], boxes[remaining])
        group = remaining[overlap > iou_threshold]
        group = group if group.size else remaining[:1]
        wts = scores[group][:, None]
        b = (boxes[group] * wts).sum(0) / wts.sum()
        k = (keypoints[group] * wts[:, :, None]).sum(0) / wts.sum()
        out.append(Detection(float(scores[best]), (float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])),
                             k.astype(np.float32)))
        remaining = remaining[overlap <= iou_threshold]
        if best in remaining:  # a degenerate box never overlaps itself
            remaining = remaining[remaining != best]
    return out
