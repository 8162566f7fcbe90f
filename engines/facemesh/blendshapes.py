"""The blendshape network's input: 146 of the 478 landmarks, x and y in pixels of the whole image.

The index list is MediaPipe's (face_blendshapes_graph.cc, ``kLandmarksSubsetIdxs``): brows, eyes,
irises, nose, lips and face outline, in this order.
"""

from __future__ import annotations

import numpy as np

SUBSET = np.array([
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153,
    154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251,
    263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318,
    321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386,
    387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
], np.intp)
assert SUBSET.size == 146


def blendshape_input(landmarks_px: np.ndarray) -> np.ndarray:
    """(1, 146, 2) float32 network input from (478, 3) landmarks in image pixels."""
    return np.ascontiguousarray(landmarks_px[SUBSET, :2], np.float32)[None]
