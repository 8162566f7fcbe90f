"""Plain-numpy references for the numba kernels: the tests compare each kernel with these, and the
benchmark times them side by side."""

import numpy as np

from monitor import landmarks as L

F = np.diag([1.0, -1.0, -1.0])


def to_head_frame(pts, rot):
    return (rot.T @ (F @ pts.T)).T


def contour_y_at(head, contour, xq):
    xs = head[contour, 0]
    ys = head[contour, 1]
    for j in range(len(contour) - 1):
        lo, hi = sorted((xs[j], xs[j + 1]))
        if lo <= xq <= hi:
            if hi - lo < 1e-9:
                return (ys[j] + ys[j + 1]) / 2
            return np.interp(xq, [xs[j], xs[j + 1]] if xs[j] < xs[j + 1] else [xs[j + 1], xs[j]],
                             [ys[j], ys[j + 1]] if xs[j] < xs[j + 1] else [ys[j + 1], ys[j]])
    return np.nan


def frame_measures(pts, rot):
    rot = np.asarray(rot)[:3, :3]
    h = to_head_frame(np.asarray(pts, float), rot)
    out = []
    sides = (
        (L.LEFT_IRIS_CENTER, L.LEFT_UPPER_LID_CONTOUR, L.LEFT_LOWER_LID_CONTOUR, L.LEFT_BROW_CONTOUR),
        (L.RIGHT_IRIS_CENTER, L.RIGHT_UPPER_LID_CONTOUR, L.RIGHT_LOWER_LID_CONTOUR, L.RIGHT_BROW_CONTOUR),
    )
    up = [contour_y_at(h, s[1], h[s[0], 0]) for s in sides]
    lo = [contour_y_at(h, s[2], h[s[0], 0]) for s in sides]
    br = [contour_y_at(h, s[3], h[s[0], 0]) for s in sides]
    yc = [h[s[0], 1] for s in sides]
    out += [up[0] - lo[0], up[1] - lo[1], up[0] - yc[0], up[1] - yc[1], br[0] - yc[0], br[1] - yc[1]]
    a, b = h[L.LEFT_EYE_INNER], h[L.RIGHT_EYE_INNER]
    for m in (L.LEFT_MOUTH_CORNER, L.RIGHT_MOUTH_CORNER):
        line_y = a[1] + (h[m, 0] - a[0]) * (b[1] - a[1]) / (b[0] - a[0])
        out.append(line_y - h[m, 1])
    out.append(np.linalg.norm(a - b))
    out.append(np.linalg.norm(h[L.LEFT_IRIS_RING[0]] - h[L.LEFT_IRIS_RING[2]]))
    out.append(np.linalg.norm(h[L.RIGHT_IRIS_RING[0]] - h[L.RIGHT_IRIS_RING[2]]))
    return np.array(out)


def head_angles(rot):
    r = np.asarray(rot)[:3, :3]
    yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1, 1)))
    pitch = -np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return np.array([yaw, pitch, roll])


def median_filter(x, width=5):
    x = np.asarray(x, float)
    half = width // 2
    out = np.empty_like(x)
    for i in range(len(x)):
        w = x[max(0, i - half): i + half + 1]
        w = w[~np.isnan(w)]
        out[i] = np.median(w) if w.size else np.nan
    return out
