"""Plain-numpy references for the numba kernels: the tests compare each kernel with these, and the
benchmark times them side by side."""

import numpy as np

from monitor.measures import face_model as L
from monitor.measures.kernels._eyelid import (
    ARC_DEG,
    EYE_OUT,
    LID_CLEAR_R,
    LOWER_R,
    MIN_ARC,
    N_ARC,
    N_COLUMNS,
    N_FINE,
    SPAN_R,
    STEP_PER_R,
    UPPER_ABOVE_R,
    UPPER_BELOW_R,
)
from monitor.measures.kernels._gates import EVIDENCE_OUT, PUPIL_R, SCLERA_AT
from monitor.measures.kernels._mouth import (
    MAX_GAP,
    MAX_LIP_GAP,
    MIN_CONTRAST,
    MIN_SEAM,
    MOUTH_OUT,
    N_SEAM,
    SEAM_FROM,
    SEAM_HALF,
    SEAM_SAMPLES,
    SEAM_SIGMA,
    SEAM_TO,
)

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


# --- eyelid refinement (monitor/measures/kernels/_eyelid.py), vectorised -----------------------------------

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


def _smooth(prof, kern):
    """Convolution with an odd-length kernel, renormalised where it overhangs the ends."""
    return np.convolve(prof, kern, "same") / np.convolve(np.ones(len(prof)), kern, "same")


def _parabola(a, b, c):
    den = a - 2 * b + c
    return 0.0 if abs(den) < 1e-12 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def _visible(oy, r, ud, t_top, t_bottom):
    d = max(0.75, 0.1 * r)
    t_in, t_out = oy + (r - d) * ud, oy + (r + d) * ud
    vis = (np.minimum(t_in, t_out) > t_top) & (np.maximum(t_in, t_out) < t_bottom)
    return vis, vis[:N_ARC].sum() >= MIN_ARC and vis[N_ARC:].sum() >= MIN_ARC


def _arc_score(img, c, r, u, vis):
    d = max(0.75, 0.1 * r)
    step = luma_at(img, *(c[None] + (r + d) * u[vis]).T) - luma_at(img, *(c[None] + (r - d) * u[vis]).T)
    return np.nan if np.isnan(step).any() else step.mean()


def _quadratic_peak(y):
    k = np.arange(-2, 3)
    a, b, _ = np.polyfit(k, y, 2)
    return 0.0 if a >= -1e-12 else float(np.clip(-b / (2 * a), -1, 1))


def _iris_centre(img, c, r, hz, dn, t_top, t_bottom):
    a = np.deg2rad(np.linspace(-ARC_DEG, ARC_DEG, N_ARC))
    u = np.concatenate([np.cos(a)[:, None] * hz + np.sin(a)[:, None] * dn,
                        -np.cos(a)[:, None] * hz + np.sin(a)[:, None] * dn])
    ud = np.concatenate([np.sin(a), np.sin(a)])
    coarse = r / 7
    best, bx, by = -np.inf, 0.0, 0.0
    for j in range(-4, 5):
        vis, ok = _visible(j * coarse, r, ud, t_top, t_bottom)
        if not ok:
            continue
        for i in range(-2, 3):
            s = _arc_score(img, c + i * coarse * hz + j * coarse * dn, r, u, vis)
            if not np.isnan(s) and s > best:
                best, bx, by = s, i * coarse, j * coarse
    if best == -np.inf:
        return np.nan, np.nan
    vis, _ = _visible(by, r, ud, t_top, t_bottom)
    cbx = bx
    for i in (-1, 1):
        s = _arc_score(img, c + (cbx + i * coarse / 2) * hz + by * dn, r, u, vis)
        if not np.isnan(s) and s > best:
            best, bx = s, cbx + i * coarse / 2
    step, half = r / 28, N_FINE // 2
    line = np.array([_arc_score(img, c + bx * hz + (by + (k - half) * step) * dn, r, u, vis) for k in range(N_FINE)])
    if np.isnan(line).any():
        return np.nan, np.nan
    m = int(np.argmax(line))
    oy = by + (m - half) * step
    if 2 <= m <= N_FINE - 3:
        oy += _quadratic_peak(line[m - 2:m + 3]) * step
    return oy, line[m]


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
    prof = _smooth(prof, kern)
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
    t_bottom = out[1] if not np.isnan(out[1]) else (2 * r if np.isnan(out[7]) else out[7])
    out[2], out[5] = _iris_centre(img, c, r, hz, dn, tu + LID_CLEAR_R * r, t_bottom - LID_CLEAR_R * r)
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


# --- mouth corners (monitor/measures/kernels/_mouth.py) and the face's rigid size ----------------------------

def face_size(pts):
    p = np.asarray(pts, float)[L.RIGID]
    return float(np.sqrt(((p - p.mean(0)) ** 2).sum(1).mean()))


def _seam_valley(img, p, dn, t_ref, half):
    ts = t_ref - half + np.arange(SEAM_SAMPLES) * (2 * half / (SEAM_SAMPLES - 1))
    prof = luma_at(img, p[0] + ts * dn[0], p[1] + ts * dn[1])
    if np.isnan(prof).any():
        return np.nan, np.nan
    k = int(3 * SEAM_SIGMA)
    kern = np.exp(-0.5 * (np.arange(-k, k + 1) / SEAM_SIGMA) ** 2)
    sm = _smooth(prof, kern)
    im = k + int(np.argmin(sm[k:SEAM_SAMPLES - k]))
    if im <= k or im >= SEAM_SAMPLES - k - 1:
        return np.nan, np.nan
    ends = (sm[:k + 1].sum() + sm[SEAM_SAMPLES - k - 1:].sum()) / (2 * (k + 1))
    if ends <= 1:
        return np.nan, np.nan
    return ts[0] + (im + _parabola(sm[im - 1], sm[im], sm[im + 1])) * (ts[1] - ts[0]), (ends - sm[im]) / ends


def mouth_corners(img, pts, rot):
    out = np.full((2, MOUTH_OUT), np.nan)
    rot = np.asarray(rot)[:3, :3]
    f = np.hypot(rot[0, 1], rot[1, 1])
    if f < 1e-6:
        return out
    dn = np.array([-rot[0, 1], rot[1, 1]]) / f
    pts = np.asarray(pts, float)
    corners = pts[[L.LEFT_MOUTH_CORNER, L.RIGHT_MOUTH_CORNER], :2]
    width = np.linalg.norm(corners[0] - corners[1])
    if width < 4:
        return out
    out[:, 4] = (pts[L.LOWER_LIP_INNER_MID, :2] - pts[L.UPPER_LIP_INNER_MID, :2]) @ dn / width
    if out[0, 4] > MAX_LIP_GAP:
        out[:, 2] = 0
        return out
    line = pts[L.RIGHT_EYE_INNER, :2] - pts[L.LEFT_EYE_INNER, :2]
    ln = np.linalg.norm(line)
    gain = np.nan if ln < 1e-9 else -(line[0] * dn[1] - line[1] * dn[0]) / ln / f
    seams = ((L.LEFT_UPPER_SEAM, L.LEFT_LOWER_SEAM), (L.RIGHT_UPPER_SEAM, L.RIGHT_LOWER_SEAM))
    for s in range(2):
        c = corners[s]
        hz = np.array([dn[1], -dn[0]])
        if hz @ (corners.mean(0) - c) < 0:
            hz = -hz
        shifts, contrasts = [], []
        for o in np.linspace(SEAM_FROM, SEAM_TO, N_SEAM) * width:
            p = c + o * hz
            t_up = _contour_t(pts, seams[s][0], p, hz, dn)
            t_lo = _contour_t(pts, seams[s][1], p, hz, dn)
            if np.isnan(t_up) or np.isnan(t_lo) or t_lo - t_up > MAX_GAP * width:
                continue
            t_ref = (t_up + t_lo) / 2
            t, con = _seam_valley(img, p, dn, t_ref, SEAM_HALF * width)
            if np.isnan(t) or con < MIN_CONTRAST:
                continue
            shifts.append(t - t_ref)
            contrasts.append(con)
        out[s, 2] = len(shifts)
        if len(shifts) >= MIN_SEAM:
            out[s, 0] = np.median(shifts)
            out[s, 1] = np.median(contrasts)
            out[s, 3] = out[s, 0] * gain
    return out


# --- eye evidence for the plausibility gates (monitor/measures/kernels/_gates.py) ------------------------

def eye_evidence(img, pts):
    pts = np.asarray(pts, float)
    out = np.full((2, EVIDENCE_OUT), np.nan)
    eyes = ((L.LEFT_IRIS_CENTER, L.LEFT_IRIS_RING, L.LEFT_EYE_INNER, L.LEFT_EYE_OUTER),
            (L.RIGHT_IRIS_CENTER, L.RIGHT_IRIS_RING, L.RIGHT_EYE_INNER, L.RIGHT_EYE_OUTER))
    for s, (c, ring, inner, outer) in enumerate(eyes):
        a, b = pts[ring[0], :2], pts[ring[2], :2]
        r = np.linalg.norm(a - b) / 2
        offsets = PUPIL_R * r * np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]])
        xy = pts[c, :2] + offsets
        out[s, 0] = luma_at(img, xy[:, 0], xy[:, 1]).mean()
        sides = []
        for p in (a, b):
            q = min((pts[inner, :2], pts[outer, :2]), key=lambda q: np.sum((q - p) ** 2))
            xy = p + np.array(SCLERA_AT)[:, None] * (q - p)
            sides.append(luma_at(img, xy[:, 0], xy[:, 1]).mean())
        sides = [v for v in sides if np.isfinite(v)]
        out[s, 1] = max(sides) if sides else np.nan
    return out


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
