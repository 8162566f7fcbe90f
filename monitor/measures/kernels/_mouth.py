"""Image-based refinement of the mouth corners' height (see docs/measures.md, "Commissure height").

Like its lid points, the landmark model's mouth corners lag a corner that really droops: they move
by about three quarters of the true distance. Where the lips meet, the seam between them is a dark
valley in the image. These kernels find that valley in a few columns just medial to each corner and
move the landmark corner by how far the seam lies below (or above) the landmark seam, along the
head's down axis in the image. The seam is evidence only where the lips meet: when the landmarks put
the lips apart at the midline (talking, smiling with teeth, an open mouth), no corner is refined and
the caller keeps the landmark value (docs/measures.md, "Plausibility gates").
"""

import numpy as np
from numba import njit

from monitor.measures.kernels._eyelid import _median_small, _parabola_offset, contour_t_at, luma_at, smooth_profile

# per-side output slots
MOUTH_OUT = 5
SEAM_SHIFT, SEAM_CONTRAST, SEAM_COLUMNS, HEIGHT_SHIFT, LIP_GAP = range(MOUTH_OUT)

N_SEAM = 7  # columns, from SEAM_FROM to SEAM_TO mouth widths medial to the corner
SEAM_FROM = 0.04
SEAM_TO = 0.16
SEAM_HALF = 0.1  # valley search: ± this many mouth widths around the landmark seam
SEAM_SAMPLES = 41  # profile samples over the search window
SEAM_SIGMA = 2.0  # Gaussian smoothing of the profile, in samples (0.01 mouth widths)
MAX_GAP = 0.08  # lips farther apart than this (mouth widths) at a column: no seam there
MIN_SEAM = 4  # fewest seam columns for a refined corner
MIN_CONTRAST = 0.04  # weakest valley (Weber contrast) counted as a seam
# inner lips farther apart than this at the midline (mouth widths): the lips are apart, no corner is refined.
# 0.06 of a ~50 mm adult mouth is ~3 mm, the upper end of the normal resting interlabial gap (docs/measures.md)
MAX_LIP_GAP = 0.06


@njit(cache=True, nogil=True)
def seam_valley(img, px, py, dx, dy, t_ref, half, prof, smooth, kern):
    """The darkest point of a luma profile along (dx, dy) through (px, py), within ±half of t_ref.
    Returns (its coordinate along the profile, Weber contrast against the window's two ends), or
    NaNs when the minimum is not inside the window or part of it is outside the image."""
    n = prof.shape[0]
    step = 2.0 * half / (n - 1)
    for i in range(n):
        t = t_ref - half + i * step
        v = luma_at(img, px + t * dx, py + t * dy)
        if np.isnan(v):
            return np.nan, np.nan
        prof[i] = v
    smooth_profile(prof, kern, smooth)
    k = kern.shape[0] // 2
    im = k
    for i in range(k, n - k):
        if smooth[i] < smooth[im]:
            im = i
    if im <= k or im >= n - k - 1:
        return np.nan, np.nan
    ends = 0.0
    for i in range(k + 1):
        ends += smooth[i] + smooth[n - 1 - i]
    ends /= 2.0 * (k + 1)
    if ends <= 1.0:
        return np.nan, np.nan
    t = t_ref - half + (im + _parabola_offset(smooth[im - 1], smooth[im], smooth[im + 1])) * step
    return t, (ends - smooth[im]) / ends


@njit(cache=True, nogil=True)
def mouth_corners(img, pts, rot, corners, canthi, midline, upper_l, lower_l, upper_r, lower_r, out):
    """Both mouth corners: out is (2, MOUTH_OUT), row 0 the patient's left.

    ``corners`` = [left, right] mouth corner, ``canthi`` = [left, right] inner canthus, ``midline`` = [upper,
    lower] inner lip midpoint; ``upper_<side>``
    and ``lower_<side>`` are that half of the inner lip contour, upper and lower lip, each running
    from the midline out to the mouth corner. Slots: the seam's median shift from the landmark seam (image pixels along
    the head's down axis, + down), its median contrast, how many columns found it, and the change that
    shift makes to the commissure height (head-frame pixels, + lower; see _measures.py), and the gap
    between the inner lips at the midline along the down axis (mouth widths, in both rows). When that
    gap exceeds MAX_LIP_GAP no column is searched (0 seam columns) and the other seam slots stay NaN."""
    for s in range(2):
        for k in range(MOUTH_OUT):
            out[s, k] = np.nan
    f = np.sqrt(rot[0, 1] ** 2 + rot[1, 1] ** 2)
    if f < 1e-6:
        return
    dx = -rot[0, 1] / f  # the head's down axis in the image
    dy = rot[1, 1] / f
    lx = pts[corners[0], 0]
    ly = pts[corners[0], 1]
    rx = pts[corners[1], 0]
    ry = pts[corners[1], 1]
    width = np.sqrt((lx - rx) ** 2 + (ly - ry) ** 2)
    if width < 4.0:
        return
    gap = ((pts[midline[1], 0] - pts[midline[0], 0]) * dx + (pts[midline[1], 1] - pts[midline[0], 1]) * dy) / width
    out[0, LIP_GAP] = gap
    out[1, LIP_GAP] = gap
    if gap > MAX_LIP_GAP:
        out[0, SEAM_COLUMNS] = 0.0
        out[1, SEAM_COLUMNS] = 0.0
        return
    ax = pts[canthi[0], 0]
    ay = pts[canthi[0], 1]
    bx = pts[canthi[1], 0]
    by = pts[canthi[1], 1]
    ln = np.sqrt((bx - ax) ** 2 + (by - ay) ** 2)
    # a corner moved by δ along the down axis lowers it below the canthal line by gain·δ (head units)
    gain = np.nan if ln < 1e-9 else -((bx - ax) * dy - (by - ay) * dx) / ln / f
    half = SEAM_HALF * width
    prof = np.empty(SEAM_SAMPLES)
    smooth = np.empty(SEAM_SAMPLES)
    kh = int(3.0 * SEAM_SIGMA)
    kern = np.empty(2 * kh + 1)
    for j in range(-kh, kh + 1):
        kern[j + kh] = np.exp(-0.5 * (j / SEAM_SIGMA) ** 2)
    shifts = np.empty(N_SEAM)
    contrasts = np.empty(N_SEAM)
    for s in range(2):
        cx = pts[corners[s], 0]
        cy = pts[corners[s], 1]
        upper = upper_l if s == 0 else upper_r
        lower = lower_l if s == 0 else lower_r
        # toward the mouth's middle along the head's horizontal axis
        hx = dy
        hy = -dx
        if hx * ((lx + rx) / 2 - cx) + hy * ((ly + ry) / 2 - cy) < 0:
            hx = -hx
            hy = -hy
        found = 0
        for c in range(N_SEAM):
            o = (SEAM_FROM + (SEAM_TO - SEAM_FROM) * c / (N_SEAM - 1)) * width
            px = cx + o * hx
            py = cy + o * hy
            t_up = contour_t_at(pts, upper, px, py, hx, hy, dx, dy)
            t_lo = contour_t_at(pts, lower, px, py, hx, hy, dx, dy)
            if np.isnan(t_up) or np.isnan(t_lo) or t_lo - t_up > MAX_GAP * width:
                continue
            t_ref = 0.5 * (t_up + t_lo)
            t, con = seam_valley(img, px, py, dx, dy, t_ref, half, prof, smooth, kern)
            if np.isnan(t) or con < MIN_CONTRAST:
                continue
            shifts[found] = t - t_ref
            contrasts[found] = con
            found += 1
        out[s, SEAM_COLUMNS] = found
        if found >= MIN_SEAM:
            out[s, SEAM_SHIFT] = _median_small(shifts, found)
            out[s, SEAM_CONTRAST] = _median_small(contrasts, found)
            out[s, HEIGHT_SHIFT] = out[s, SEAM_SHIFT] * gain
