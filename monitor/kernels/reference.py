"""Plain-numpy references for the numba kernels: the tests compare each kernel with these, and the
benchmark times them side by side."""

import numpy as np

from monitor import landmarks as L

from ._eyelid import ARC_DEG, EYE_OUT, LOWER_R, N_ARC, N_COLUMNS, SPAN_R, STEP_PER_R, UPPER_ABOVE_R, UPPER_BELOW_R

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
    pts = np.asarray(pts, float)
    h = to_head_frame(pts, rot)
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
    pa, pb = pts[L.LEFT_EYE_INNER, :2], pts[L.RIGHT_EYE_INNER, :2]
    fv = np.hypot(rot[0, 1], rot[1, 1])
    for m in (L.LEFT_MOUTH_CORNER, L.RIGHT_MOUTH_CORNER):
        v, w = pb - pa, pts[m, :2] - pa
        out.append(-(v[0] * w[1] - v[1] * w[0]) / np.linalg.norm(v) / fv)
    out.append(np.linalg.norm(a - b))
    out.append(np.linalg.norm(h[L.LEFT_IRIS_RING[0]] - h[L.LEFT_IRIS_RING[2]]))
    out.append(np.linalg.norm(h[L.RIGHT_IRIS_RING[0]] - h[L.RIGHT_IRIS_RING[2]]))
    lip = h[L.LOWER_LIP_MID]
    vec = [h[m, :2] - lip[:2] for m in (L.LEFT_MOUTH_CORNER, L.RIGHT_MOUTH_CORNER)]
    out += [np.hypot(*v) for v in vec]
    out += [np.degrees(np.arctan2(v[1], abs(v[0]))) for v in vec]
    for poly in (L.LEFT_INNER_LIP, L.RIGHT_INNER_LIP):
        x, y = h[poly, 0], h[poly, 1]
        out.append(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))
    eyes = ((L.LEFT_IRIS_CENTER, L.LEFT_EYE_INNER, L.LEFT_EYE_OUTER), (L.RIGHT_IRIS_CENTER, L.RIGHT_EYE_INNER, L.RIGHT_EYE_OUTER))
    rel = [h[c, :2] - (h[i, :2] + h[o, :2]) / 2 for c, i, o in eyes]
    out += [rel[0][0], rel[1][0], rel[0][1], rel[1][1]]
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


# --- eyelid refinement (monitor/kernels/_eyelid.py), vectorised -----------------------------------

def luma_at(img, x, y):
    img = np.asarray(img, float)
    h, w = img.shape[:2]
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    xc = np.where(ok, x, 0.0)
    yc = np.where(ok, y, 0.0)
    x0 = np.minimum(xc.astype(int), w - 2)
    y0 = np.minimum(yc.astype(int), h - 2)
    fx = (xc - x0)[..., None]
    fy = (yc - y0)[..., None]
    p = (img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x0 + 1] * fx * (1 - fy)
         + img[y0 + 1, x0] * (1 - fx) * fy + img[y0 + 1, x0 + 1] * fx * fy)
    v = p @ np.array([0.299, 0.587, 0.114])
    return np.where(ok, v, np.nan)


def _contour_t(pts, contour, c, hz, dn):
    q = pts[contour, :2] - c
    s, t = q @ hz, q @ dn
    for j in range(len(contour) - 1):
        if min(s[j], s[j + 1]) <= 0 <= max(s[j], s[j + 1]):
            if abs(s[j + 1] - s[j]) < 1e-9:
                return (t[j] + t[j + 1]) / 2
            w = -s[j] / (s[j + 1] - s[j])
            return (1 - w) * t[j] + w * t[j + 1]
    return np.nan


def _parabola(a, b, c):
    den = a - 2 * b + c
    return 0.0 if abs(den) < 1e-12 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def _arc_score(img, c, r, u):
    d = max(0.75, 0.1 * r)
    outer = luma_at(img, *(c[None] + (r + d) * u).T)
    inner = luma_at(img, *(c[None] + (r - d) * u).T)
    d = outer - inner
    return np.nan if np.isnan(d).any() else d.mean()


def _iris_centre(img, c, r, hz, dn):
    a = np.deg2rad(np.linspace(-ARC_DEG, ARC_DEG, N_ARC))
    u = np.concatenate([np.cos(a)[:, None] * hz + np.sin(a)[:, None] * dn,
                        -np.cos(a)[:, None] * hz + np.sin(a)[:, None] * dn])
    coarse = r / 7
    cands = [(i * coarse, j * coarse) for i in range(-2, 3) for j in range(-4, 5)]
    scores = [_arc_score(img, c + ox * hz + oy * dn, r, u) for ox, oy in cands]
    if np.all(np.isnan(scores)):
        return np.nan, np.nan
    k = int(np.nanargmax(scores))
    best, (bx, by) = scores[k], cands[k]
    fine = coarse / 2
    grid = np.array([[_arc_score(img, c + (bx + (i - 1) * fine) * hz + (by + (j - 1) * fine) * dn, r, u)
                      for j in range(3)] for i in range(3)])
    cbx, cby = bx, by
    for i in range(3):
        for j in range(3):
            if not np.isnan(grid[i, j]) and grid[i, j] >= best:
                best, bx, by = grid[i, j], cbx + (i - 1) * fine, cby + (j - 1) * fine
    bi, bj = int(round((bx - cbx) / fine)) + 1, int(round((by - cby) / fine)) + 1
    oy = by
    if bj == 1 and not np.isnan(grid[bi, 0]) and not np.isnan(grid[bi, 2]):
        oy += _parabola(grid[bi, 0], grid[bi, 1], grid[bi, 2]) * fine
    return oy, best


def _weber(prof, i, bright_above):
    k = np.arange(int(0.1 * STEP_PER_R), int(0.35 * STEP_PER_R) + 1)
    above = prof[i - k[i - k >= 0]].mean()
    below = prof[i + k[i + k < len(prof)]].mean()
    bright, dark = (above, below) if bright_above else (below, above)
    return 0.0 if bright <= 1 else (bright - dark) / bright


def eye_refine(img, pts, iris, ring_a, ring_b, upper, lower, dn):
    out = np.full(EYE_OUT, np.nan)
    hz = np.array([dn[1], -dn[0]])
    c = pts[iris, :2].astype(float)
    r = 0.5 * np.linalg.norm(pts[ring_a, :2] - pts[ring_b, :2])
    out[9] = r
    out[6] = _contour_t(pts, upper, c, hz, dn)
    out[7] = _contour_t(pts, lower, c, hz, dn)
    if not r > 1:
        out[8] = 0.0
        return out
    n = int(2 * SPAN_R * STEP_PER_R) + 1
    step = r / STEP_PER_R
    ts = -SPAN_R * r + np.arange(n) * step
    offs = (-0.4 + 0.8 * np.arange(N_COLUMNS) / (N_COLUMNS - 1)) * r
    grid = c[None, None] + offs[None, :, None] * hz + ts[:, None, None] * dn
    vals = luma_at(img, grid[..., 0], grid[..., 1])
    full = ~np.isnan(vals).any(1)
    out[8] = full.mean()
    if not full.all():
        return out
    prof = np.median(vals, 1)
    sig = 0.1 * STEP_PER_R
    half = int(3 * sig) + 1
    kern = np.exp(-0.5 * (np.arange(-half, half + 1) / sig) ** 2)
    num = np.convolve(prof, kern, "same")
    den = np.convolve(np.ones(n), kern, "same")
    prof = num / den
    grad = np.zeros(n)
    grad[1:-1] = (prof[2:] - prof[:-2]) / (2 * step)
    inner = np.arange(1, n - 1)
    if np.isnan(out[6]):
        return out
    lo_u, hi_u = max(-1.8 * r, out[6] - UPPER_ABOVE_R * r), min(0.9 * r, out[6] + UPPER_BELOW_R * r)
    local_min = np.zeros(n, bool)
    local_min[1:-1] = (grad[1:-1] <= grad[:-2]) & (grad[1:-1] <= grad[2:])
    local_max = np.zeros(n, bool)
    local_max[1:-1] = (grad[1:-1] >= grad[:-2]) & (grad[1:-1] >= grad[2:])
    win = inner[(ts[inner] > lo_u) & (ts[inner] < hi_u) & local_min[inner] & (grad[inner] < 0)]
    if not win.size:
        return out
    iu = win[np.argmin(grad[win])]
    tu = ts[0] + (iu + _parabola(grad[iu - 1], grad[iu], grad[iu + 1])) * step
    out[0] = tu
    out[3] = _weber(prof, iu, True)
    t_lo = 1.0 * r if np.isnan(out[7]) else out[7]
    lo_t, hi_t = max(tu + 0.3 * r, t_lo - LOWER_R * r), min(1.9 * r, t_lo + LOWER_R * r)
    win = inner[(ts[inner] > lo_t) & (ts[inner] < hi_t) & local_max[inner] & (grad[inner] > 0)]
    if win.size:
        il = win[np.argmax(grad[win])]
        out[1] = ts[0] + (il + _parabola(grad[il - 1], grad[il], grad[il + 1])) * step
        out[4] = _weber(prof, il, False)
    out[2], out[5] = _iris_centre(img, c, r, hz, dn)
    return out


def eyelids(img, pts, rot):
    rot = np.asarray(rot)[:3, :3]
    f = np.hypot(rot[0, 1], rot[1, 1])
    dn = np.array([-rot[0, 1], rot[1, 1]]) / f
    pts = np.asarray(pts, float)
    return np.stack([
        eye_refine(img, pts, L.LEFT_IRIS_CENTER, L.LEFT_IRIS_RING[0], L.LEFT_IRIS_RING[2],
                   L.LEFT_UPPER_LID_CONTOUR, L.LEFT_LOWER_LID_CONTOUR, dn),
        eye_refine(img, pts, L.RIGHT_IRIS_CENTER, L.RIGHT_IRIS_RING[0], L.RIGHT_IRIS_RING[2],
                   L.RIGHT_UPPER_LID_CONTOUR, L.RIGHT_LOWER_LID_CONTOUR, dn),
    ])


# --- trend and the live fatigue update ------------------------------------------------------------

def theil_sen(t, y):
    t, y = np.asarray(t, float), np.asarray(y, float)
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    i, j = np.triu_indices(len(t), 1)
    dt = t[j] - t[i]
    keep = dt > 0
    return float(np.median((y[j] - y[i])[keep] / dt[keep])) if keep.any() else np.nan


class FatigueReference:
    """The per-frame work of FatigueTracker.update in plain numpy (for the benchmark)."""

    def __init__(self, bin_s=0.5):
        self.bin_s, self.t0, self.values, self.bins = bin_s, None, [], []

    def update(self, t, value):
        self.t0 = t if self.t0 is None else self.t0
        if int((t - self.t0) // self.bin_s) > len(self.bins):
            self.bins.append(np.median(np.array(self.values)) if self.values else np.nan)
            self.values = []
        self.values.append(value)
