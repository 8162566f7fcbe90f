"""The per-frame measure kernel (see docs/measures.md for every definition)."""

import numpy as np
from numba import njit

from monitor.measures.kernels._geometry import contour_y_at, distance, polygon_area, to_head_frame

# Output slots, in head-frame pixel units (scaled to mm by the caller), in this order:
#  0,1 eye aperture L,R   2,3 MRD1 L,R   4,5 brow height L,R   6,7 commissure height L,R
#  8 intercanthal   9,10 horizontal iris diameter L,R
#  11,12 commissure excursion L,R   13,14 smile angle L,R (degrees)   15,16 dental show L,R (px²)
#  17,18 horizontal gaze L,R   19,20 vertical gaze L,R
N_OUT = 21


@njit(cache=True, nogil=True)
def frame_measures_px(pts, rot, upper_l, lower_l, upper_r, lower_r, brow_l, brow_r, idx, mouth_l, mouth_r,
                      out, head):
    """``idx`` = [iris L, iris R, inner canthus L, inner canthus R, mouth L, mouth R,
    iris ring L horizontal a, b, iris ring R horizontal a, b, lower lip midpoint, outer canthus L, R].
    ``mouth_l``/``mouth_r``: closed polygons of each half of the inner lip contour (from the upper
    midpoint round the corner to the lower midpoint)."""
    to_head_frame(pts, rot, head)
    for side in range(2):
        c = idx[side]
        xc = head[c, 0]
        yc = head[c, 1]
        if side == 0:
            up = contour_y_at(head, upper_l, xc)
            lo = contour_y_at(head, lower_l, xc)
            br = contour_y_at(head, brow_l, xc)
        else:
            up = contour_y_at(head, upper_r, xc)
            lo = contour_y_at(head, lower_r, xc)
            br = contour_y_at(head, brow_r, xc)
        out[0 + side] = up - lo
        out[2 + side] = up - yc
        out[4 + side] = br - yc
    # commissure height: mouth corner below the line through the inner canthi, measured in the image
    # plane perpendicular to that line (tilt-corrected, Emotrics-style) and divided by the vertical
    # foreshortening of the head (pitch); the landmark depth is too unsteady for this vertical gap
    ax = pts[idx[2], 0]
    ay = pts[idx[2], 1]
    bx = pts[idx[3], 0]
    by = pts[idx[3], 1]
    ln = np.sqrt((bx - ax) ** 2 + (by - ay) ** 2)
    fv = np.sqrt(rot[0, 1] ** 2 + rot[1, 1] ** 2)
    for side in range(2):
        m = idx[4 + side]
        if ln < 1e-9 or fv < 1e-6:
            out[6 + side] = np.nan
        else:
            cross = (bx - ax) * (pts[m, 1] - ay) - (by - ay) * (pts[m, 0] - ax)
            out[6 + side] = -cross / ln / fv
    out[8] = distance(head, idx[2], idx[3])
    out[9] = distance(head, idx[6], idx[7])
    out[10] = distance(head, idx[8], idx[9])
    # mouth, after Emotrics: from the lower lip's midline point to each commissure
    lip = idx[10]
    for side in range(2):
        m = idx[4 + side]
        dxm = head[m, 0] - head[lip, 0]
        dym = head[m, 1] - head[lip, 1]
        out[11 + side] = np.sqrt(dxm * dxm + dym * dym)
        out[13 + side] = np.degrees(np.arctan2(dym, abs(dxm)))
    out[15] = polygon_area(head, mouth_l)
    out[16] = polygon_area(head, mouth_r)
    # gaze: iris centre from the midpoint of its eye's corners (x toward the patient's left, y up)
    for side in range(2):
        c = idx[side]
        inner = idx[2 + side]
        outer = idx[11 + side]
        out[17 + side] = head[c, 0] - 0.5 * (head[inner, 0] + head[outer, 0])
        out[19 + side] = head[c, 1] - 0.5 * (head[inner, 1] + head[outer, 1])


@njit(cache=True, nogil=True)
def frame_measures_px_batch(pts, rots, upper_l, lower_l, upper_r, lower_r, brow_l, brow_r, idx, mouth_l, mouth_r,
                            out):
    head = np.empty((pts.shape[1], 3))
    for i in range(pts.shape[0]):
        frame_measures_px(pts[i], rots[i], upper_l, lower_l, upper_r, lower_r, brow_l, brow_r, idx, mouth_l,
                          mouth_r, out[i], head)
