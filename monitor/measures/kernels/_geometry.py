"""numba helpers shared by the measure kernels: head-frame transform and contour interpolation."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def to_head_frame(pts, rot, out):
    """Express image-space landmarks (x right, y down, z away; pixels) in the head's frame.

    ``rot`` is the rotation part of MediaPipe's facial transformation matrix (OpenGL camera axes:
    x right, y up, z toward the viewer). The head frame has x from the patient's right to left,
    y up, z out of the face, so measures do not change with head pose.
    """
    n = pts.shape[0]
    for i in range(n):
        gx = pts[i, 0]
        gy = -pts[i, 1]
        gz = -pts[i, 2]
        for k in range(3):
            out[i, k] = rot[0, k] * gx + rot[1, k] * gy + rot[2, k] * gz


@njit(cache=True, nogil=True)
def contour_y_at(head, contour, xq):
    """Head-frame y of a landmark contour at abscissa ``xq``, by linear interpolation between the
    two neighbouring contour points; NaN when ``xq`` lies outside the contour."""
    for j in range(contour.shape[0] - 1):
        x0 = head[contour[j], 0]
        x1 = head[contour[j + 1], 0]
        lo = min(x0, x1)
        hi = max(x0, x1)
        if lo <= xq <= hi:
            if hi - lo < 1e-9:
                return 0.5 * (head[contour[j], 1] + head[contour[j + 1], 1])
            w = (xq - x0) / (x1 - x0)
            return (1.0 - w) * head[contour[j], 1] + w * head[contour[j + 1], 1]
    return np.nan


@njit(cache=True, nogil=True)
def distance(head, a, b):
    dx = head[a, 0] - head[b, 0]
    dy = head[a, 1] - head[b, 1]
    dz = head[a, 2] - head[b, 2]
    return np.sqrt(dx * dx + dy * dy + dz * dz)


@njit(cache=True, nogil=True)
def polygon_area(head, poly):
    """Area of a closed landmark polygon in the head frame's x–y plane (shoelace formula)."""
    acc = 0.0
    n = poly.shape[0]
    for j in range(n):
        a = poly[j]
        b = poly[(j + 1) % n]
        acc += head[a, 0] * head[b, 1] - head[b, 0] * head[a, 1]
    return 0.5 * abs(acc)


@njit(cache=True, nogil=True)
def rigid_size(pts, idx):
    """RMS 3D distance of the landmarks ``idx`` from their centroid: the face's size in the image,
    unchanged by head rotation and (for points that expressions hardly move) by expressions."""
    n = idx.shape[0]
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    for i in range(n):
        c0 += pts[idx[i], 0]
        c1 += pts[idx[i], 1]
        c2 += pts[idx[i], 2]
    c0 /= n
    c1 /= n
    c2 /= n
    acc = 0.0
    for i in range(n):
        acc += (pts[idx[i], 0] - c0) ** 2 + (pts[idx[i], 1] - c1) ** 2 + (pts[idx[i], 2] - c2) ** 2
    return np.sqrt(acc / n)
