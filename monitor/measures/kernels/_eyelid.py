"""Image-based refinement of the eyelid margins and the iris centre (see docs/measures.md).

The landmark model regresses toward an average face, so its lid points lag a lid that really moves,
and its iris centre is pulled toward whatever part of the iris stays visible. These kernels look at
the pixels instead: an intensity profile down the pupil's column locates the upper and lower lid
margins, and a circle edge search on the lateral arcs of the limbus (which the lids do not cover)
locates the iris centre. Everything is measured along the head's own down axis in the image, in
image pixels, relative to the landmark iris centre.
"""

import numpy as np
from numba import njit

# per-eye output slots
EYE_OUT = 10
T_UPPER, T_LOWER, T_CENTRE, C_UPPER, C_LOWER, IRIS_SCORE, T_UPPER_LM, T_LOWER_LM, IN_FRAME, RADIUS = range(EYE_OUT)

N_COLUMNS = 7  # profile columns across the pupil, spread over ±0.4 iris radius
STEP_PER_R = 28.0  # profile samples per iris radius
SPAN_R = 2.4  # the profile runs from -SPAN_R to +SPAN_R iris radii around the iris centre
N_ARC = 13  # samples per lateral arc of the limbus
ARC_DEG = 60.0  # lateral arcs: ±ARC_DEG around the horizontal on both sides (the lids mask them)
LID_CLEAR_R = 0.15  # arc samples this close to a found lid margin (iris radii) are left out
MIN_ARC = 3  # fewest visible samples per arc for a circle to be scored
N_FINE = 13  # the iris centre's fine search down the axis: ±6 steps of r/28 around the coarse best
UPPER_ABOVE_R = 0.5  # upper-margin search window around the landmark lid, in iris radii
UPPER_BELOW_R = 1.3
LOWER_R = 0.6  # lower-margin search window: ± this many iris radii around the landmark lower lid


@njit(cache=True, nogil=True)
def luma_at(img, x, y):
    """Bilinear luma (BT.601) of an RGB uint8 image at (x, y); NaN outside the image."""
    h = img.shape[0]
    w = img.shape[1]
    if not (0.0 <= x <= w - 1.0 and 0.0 <= y <= h - 1.0):
        return np.nan
    x0 = min(int(x), w - 2)
    y0 = min(int(y), h - 2)
    fx = x - x0
    fy = y - y0
    acc = 0.0
    for dy in range(2):
        for dx in range(2):
            wgt = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy)
            p = img[y0 + dy, x0 + dx]
            acc += wgt * (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
    return acc


@njit(cache=True, nogil=True)
def contour_t_at(pts, contour, cx, cy, hx, hy, dx, dy):
    """Where a landmark contour crosses the pupil's column: its coordinate along the down axis
    (dx, dy), at zero offset along the horizontal axis (hx, hy); NaN when it does not cross."""
    for j in range(contour.shape[0] - 1):
        ax = pts[contour[j], 0] - cx
        ay = pts[contour[j], 1] - cy
        bx = pts[contour[j + 1], 0] - cx
        by = pts[contour[j + 1], 1] - cy
        sa = ax * hx + ay * hy
        sb = bx * hx + by * hy
        if min(sa, sb) <= 0.0 <= max(sa, sb):
            ta = ax * dx + ay * dy
            tb = bx * dx + by * dy
            if abs(sb - sa) < 1e-9:
                return 0.5 * (ta + tb)
            w = -sa / (sb - sa)
            return (1.0 - w) * ta + w * tb
    return np.nan


@njit(cache=True, nogil=True)
def _median_small(buf, k):
    """Median of buf[:k] by insertion sort (k is small); buf is reordered."""
    for i in range(1, k):
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v
    if k % 2 == 1:
        return buf[k // 2]
    return 0.5 * (buf[k // 2 - 1] + buf[k // 2])


@njit(cache=True, nogil=True)
def smooth_profile(prof, kern, out):
    """out = prof convolved with the odd-length kernel kern, renormalised where it overhangs the ends."""
    n = prof.shape[0]
    half = kern.shape[0] // 2
    for i in range(n):
        acc = 0.0
        wsum = 0.0
        for j in range(max(0, i - half), min(n, i + half + 1)):
            wgt = kern[j - i + half]
            acc += wgt * prof[j]
            wsum += wgt
        out[i] = acc / wsum


@njit(cache=True, nogil=True)
def arc_directions(hx, hy, dx, dy):
    """Unit image vectors of the lateral limbus arcs, (2 * N_ARC, 3): x, y and the component along
    the head's down axis."""
    u = np.empty((2 * N_ARC, 3))
    for side in range(2):
        for k in range(N_ARC):
            a = np.deg2rad(-ARC_DEG + 2.0 * ARC_DEG * k / (N_ARC - 1))
            ch = np.cos(a) * (1.0 if side == 0 else -1.0)
            cd = np.sin(a)
            u[side * N_ARC + k, 0] = ch * hx + cd * dx
            u[side * N_ARC + k, 1] = ch * hy + cd * dy
            u[side * N_ARC + k, 2] = cd
    return u


@njit(cache=True, nogil=True)
def arc_visible(oy, r, u, t_top, t_bottom, vis):
    """Mark the arc samples of a circle centred ``oy`` down the axis that lie between the lids
    (t_top < t < t_bottom at both radial ends); False when an arc has fewer than MIN_ARC of them."""
    d = max(0.75, 0.1 * r)  # half the radial step: about a pixel at webcam scale, wider for big faces
    ok = True
    for side in range(2):
        n_side = 0
        for k in range(side * N_ARC, (side + 1) * N_ARC):
            t_in = oy + (r - d) * u[k, 2]
            t_out = oy + (r + d) * u[k, 2]
            vis[k] = min(t_in, t_out) > t_top and max(t_in, t_out) < t_bottom
            if vis[k]:
                n_side += 1
        if n_side < MIN_ARC:
            ok = False
    return ok


@njit(cache=True, nogil=True)
def _arc_score(img, cx, cy, r, u, vis):
    """Mean radial luma step (outside − inside) across a circle of radius r centred (cx, cy) on the
    arc samples marked visible: large where the dark iris meets the bright sclera. NaN when a used
    sample is outside the image."""
    total = 0.0
    d = max(0.75, 0.1 * r)
    used = 0
    for k in range(u.shape[0]):
        if not vis[k]:
            continue
        outer = luma_at(img, cx + (r + d) * u[k, 0], cy + (r + d) * u[k, 1])
        inner = luma_at(img, cx + (r - d) * u[k, 0], cy + (r - d) * u[k, 1])
        if np.isnan(outer) or np.isnan(inner):
            return np.nan
        total += outer - inner
        used += 1
    return total / used


@njit(cache=True, nogil=True)
def _parabola_offset(a, b, c):
    den = a - 2.0 * b + c
    if abs(den) < 1e-12:
        return 0.0
    off = 0.5 * (a - c) / den
    return min(0.5, max(-0.5, off))


@njit(cache=True, nogil=True)
def _quadratic_peak(y, m):
    """Vertex of the least-squares parabola through y[m-2..m+2] (offsets −2..2), clamped to ±1."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for k in range(-2, 3):
        s0 += y[m + k]
        s1 += k * y[m + k]
        s2 += k * k * y[m + k]
    b = s1 / 10.0  # Σk² = 10
    a = (s2 - 2.0 * s0) / 14.0  # Σk⁴ − (Σk²)²/5 = 34 − 20 = 14
    if a >= -1e-12:
        return 0.0
    return min(1.0, max(-1.0, -b / (2.0 * a)))


@njit(cache=True, nogil=True)
def iris_centre_search(img, cx, cy, r, hx, hy, dx, dy, t_top, t_bottom, out2):
    """Centre of the circle with the strongest visible lateral limbus edge, between t_top and
    t_bottom along the down axis (from (cx, cy)). A coarse grid (±0.3 r across, ±0.6 r down; each
    candidate uses the arc samples it sees between the lids) finds the peak; then, with the samples
    of that peak held fixed so the score varies smoothly, a fine line search down the axis and a
    least-squares parabola give a sub-pixel centre. Writes (offset along the down axis, score)."""
    u = arc_directions(hx, hy, dx, dy)
    vis = np.empty(2 * N_ARC, np.bool_)
    best = -1e30
    bx = 0.0
    by = 0.0
    coarse = r / 7.0
    for j in range(-4, 5):
        if not arc_visible(j * coarse, r, u, t_top, t_bottom, vis):
            continue
        for i in range(-2, 3):
            s = _arc_score(img, cx + i * coarse * hx + j * coarse * dx, cy + i * coarse * hy + j * coarse * dy, r, u, vis)
            if not np.isnan(s) and s > best:
                best = s
                bx = i * coarse
                by = j * coarse
    if best == -1e30:
        out2[0] = np.nan
        out2[1] = np.nan
        return
    arc_visible(by, r, u, t_top, t_bottom, vis)
    fine = coarse / 2.0
    cbx = bx
    for i in (-1, 1):
        ox = cbx + i * fine
        s = _arc_score(img, cx + ox * hx + by * dx, cy + ox * hy + by * dy, r, u, vis)
        if not np.isnan(s) and s > best:
            best = s
            bx = ox
    step = r / 28.0
    half = N_FINE // 2
    line = np.empty(N_FINE)
    m = 0
    for k in range(N_FINE):
        oy = by + (k - half) * step
        line[k] = _arc_score(img, cx + bx * hx + oy * dx, cy + bx * hy + oy * dy, r, u, vis)
        if np.isnan(line[k]):
            out2[0] = np.nan
            out2[1] = np.nan
            return
        if line[k] > line[m]:
            m = k
    oy = by + (m - half) * step
    if 2 <= m <= N_FINE - 3:
        oy += _quadratic_peak(line, m) * step
    out2[0] = oy
    out2[1] = line[m]


@njit(cache=True, nogil=True)
def eye_refine(img, pts, iris, ring_a, ring_b, upper, lower, dx, dy, out, prof, grad, colbuf, kern):
    """Refine one eye. (dx, dy) is the unit image direction of the head's down axis."""
    hx = dy  # the head's horizontal axis in the image, toward image right for an upright face
    hy = -dx
    cx = pts[iris, 0]
    cy = pts[iris, 1]
    r = 0.5 * np.sqrt((pts[ring_a, 0] - pts[ring_b, 0]) ** 2 + (pts[ring_a, 1] - pts[ring_b, 1]) ** 2)
    for k in range(EYE_OUT):
        out[k] = np.nan
    out[RADIUS] = r
    out[T_UPPER_LM] = contour_t_at(pts, upper, cx, cy, hx, hy, dx, dy)
    out[T_LOWER_LM] = contour_t_at(pts, lower, cx, cy, hx, hy, dx, dy)
    if not (r > 1.0):
        out[IN_FRAME] = 0.0
        return
    n = prof.shape[0]
    step = r / STEP_PER_R
    t0 = -SPAN_R * r
    inside = 0
    for i in range(n):
        t = t0 + i * step
        k = 0
        for c in range(N_COLUMNS):
            o = (-0.4 + 0.8 * c / (N_COLUMNS - 1)) * r
            v = luma_at(img, cx + o * hx + t * dx, cy + o * hy + t * dy)
            if not np.isnan(v):
                colbuf[k] = v
                k += 1
        if k == N_COLUMNS:
            inside += 1
        prof[i] = _median_small(colbuf, k) if k > 0 else np.nan
    out[IN_FRAME] = inside / n
    if inside < n:
        return
    # Gaussian smoothing (kern: sigma 0.1 r) then central differences, in luma per image pixel
    smooth_profile(prof, kern, grad)
    for i in range(n):
        prof[i] = grad[i]
    grad[0] = 0.0
    grad[n - 1] = 0.0
    for i in range(1, n - 1):
        grad[i] = (prof[i + 1] - prof[i - 1]) / (2.0 * step)
    # upper margin: the strongest bright→dark step going down, from half a radius above the landmark
    # lid (higher is lash tips) to 1.3 r below it (the landmarks lag a lowered lid), above 0.9 r
    t_lm = out[T_UPPER_LM]
    if np.isnan(t_lm):
        return
    lo_u = max(-1.8 * r, t_lm - UPPER_ABOVE_R * r)
    hi_u = min(0.9 * r, t_lm + UPPER_BELOW_R * r)
    iu = -1
    best = 0.0
    for i in range(1, n - 1):
        t = t0 + i * step
        if lo_u < t < hi_u and grad[i] < best and grad[i] <= grad[i - 1] and grad[i] <= grad[i + 1]:
            best = grad[i]
            iu = i
    if iu < 0:
        return
    tu = t0 + (iu + _parabola_offset(grad[iu - 1], grad[iu], grad[iu + 1])) * step
    # lower margin: the strongest dark→bright step within LOWER_R radii of the landmark lower lid
    # (the lower lid does not follow ptosis; the window keeps the pupil's own edge of a light iris out)
    il = -1
    best = 0.0
    t_lo = out[T_LOWER_LM]
    if np.isnan(t_lo):
        t_lo = 1.0 * r
    lo_t = max(tu + 0.3 * r, t_lo - LOWER_R * r)
    hi_t = min(1.9 * r, t_lo + LOWER_R * r)
    for i in range(1, n - 1):
        t = t0 + i * step
        if lo_t < t < hi_t and grad[i] > best and grad[i] >= grad[i - 1] and grad[i] >= grad[i + 1]:
            best = grad[i]
            il = i
    out[T_UPPER] = tu
    out[C_UPPER] = _weber(prof, iu, r, -1)
    if il >= 0:
        out[T_LOWER] = t0 + (il + _parabola_offset(grad[il - 1], grad[il], grad[il + 1])) * step
        out[C_LOWER] = _weber(prof, il, r, 1)
    # the limbus is searched only where it shows: between the lid margins found above (the lower
    # landmark lid when no lower margin was found), clear of the margins' own edges
    t_bottom = out[T_LOWER] if not np.isnan(out[T_LOWER]) else out[T_LOWER_LM]
    if np.isnan(t_bottom):
        t_bottom = 2.0 * r
    res = np.empty(2)
    iris_centre_search(img, cx, cy, r, hx, hy, dx, dy, tu + LID_CLEAR_R * r, t_bottom - LID_CLEAR_R * r, res)
    out[T_CENTRE] = res[0]
    out[IRIS_SCORE] = res[1]


@njit(cache=True, nogil=True)
def _weber(prof, i, r, bright_side):
    """(bright − dark) / bright over 0.1–0.35 r on each side of an edge at sample i; bright_side is
    −1 when the bright side is above (upper lid), +1 when below (lower lid)."""
    n = prof.shape[0]
    k1 = int(0.1 * STEP_PER_R)
    k2 = int(0.35 * STEP_PER_R)
    above = 0.0
    below = 0.0
    na = 0
    nb = 0
    for k in range(k1, k2 + 1):
        if i - k >= 0:
            above += prof[i - k]
            na += 1
        if i + k < n:
            below += prof[i + k]
            nb += 1
    if na == 0 or nb == 0:
        return np.nan
    above /= na
    below /= nb
    bright = above if bright_side < 0 else below
    dark = below if bright_side < 0 else above
    if bright <= 1.0:
        return 0.0
    return (bright - dark) / bright


@njit(cache=True, nogil=True)
def eyelids(img, pts, rot, iris, ring, upper_l, lower_l, upper_r, lower_r, out):
    """Both eyes: out is (2, EYE_OUT), row 0 the patient's left eye. ``ring`` holds the horizontal
    iris ring pair of each eye: [left a, left b, right a, right b]."""
    f = np.sqrt(rot[0, 1] ** 2 + rot[1, 1] ** 2)
    if f < 1e-6:
        for s in range(2):
            for k in range(EYE_OUT):
                out[s, k] = np.nan
        return
    dx = -rot[0, 1] / f
    dy = rot[1, 1] / f
    n = int(2.0 * SPAN_R * STEP_PER_R) + 1
    prof = np.empty(n)
    grad = np.empty(n)
    colbuf = np.empty(N_COLUMNS)
    sig = 0.1 * STEP_PER_R
    half = int(3.0 * sig) + 1
    kern = np.empty(2 * half + 1)
    for j in range(-half, half + 1):
        kern[j + half] = np.exp(-0.5 * (j / sig) ** 2)
    eye_refine(img, pts, iris[0], ring[0], ring[1], upper_l, lower_l, dx, dy, out[0], prof, grad, colbuf, kern)
    eye_refine(img, pts, iris[1], ring[2], ring[3], upper_r, lower_r, dx, dy, out[1], prof, grad, colbuf, kern)
