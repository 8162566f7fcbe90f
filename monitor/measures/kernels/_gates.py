"""Image evidence that a landmark mesh sits on a face (see docs/measures.md, "Plausibility gates").

A real eye shows a dark iris (and pupil) between brighter sclera. This kernel samples the image at
the mesh's iris centre and in the sclera between the iris ring and the eye's corners, so that the
gate (monitor/measures/gates.py) can refuse a mesh whose "iris" is no darker than the white of the eye
beside it: a mesh placed on the nose or the cheek.
"""

import numpy as np
from numba import njit

from monitor.measures.kernels._eyelid import luma_at

# per-eye output slots
EVIDENCE_OUT = 2
IRIS_LUMA, SCLERA_LUMA = range(EVIDENCE_OUT)

PUPIL_R = 0.3  # iris samples: the centre and four points this many iris radii from it
SCLERA_AT = (0.3, 0.5, 0.7)  # sclera samples: these fractions of the way from the iris ring to the corner


@njit(cache=True, nogil=True)
def _sclera_side(img, rx, ry, qx, qy):
    """Mean luma of the samples from a ring point (rx, ry) toward a corner (qx, qy); NaN off the image."""
    acc = 0.0
    for f in SCLERA_AT:
        v = luma_at(img, rx + f * (qx - rx), ry + f * (qy - ry))
        if np.isnan(v):
            return np.nan
        acc += v
    return acc / len(SCLERA_AT)


@njit(cache=True, nogil=True)
def eye_evidence(img, pts, idx, out):
    """Both eyes: out is (2, EVIDENCE_OUT), row 0 the patient's left. ``idx`` is (2, 5): per eye the
    iris centre, the two horizontal iris ring points, the inner and the outer corner. Slots: mean luma
    of the iris centre's samples, and the brighter of the two sclera sides' mean luma."""
    for s in range(2):
        cx = pts[idx[s, 0], 0]
        cy = pts[idx[s, 0], 1]
        ax = pts[idx[s, 1], 0]
        ay = pts[idx[s, 1], 1]
        bx = pts[idx[s, 2], 0]
        by = pts[idx[s, 2], 1]
        r = 0.5 * np.sqrt((ax - bx) ** 2 + (ay - by) ** 2)
        iris = luma_at(img, cx, cy)
        for k in range(4):
            ox = PUPIL_R * r * (1.0 if k == 0 else -1.0 if k == 1 else 0.0)
            oy = PUPIL_R * r * (1.0 if k == 2 else -1.0 if k == 3 else 0.0)
            iris += luma_at(img, cx + ox, cy + oy)
        out[s, IRIS_LUMA] = iris / 5.0
        sclera = np.nan
        for k in range(2):
            rx = ax if k == 0 else bx
            ry = ay if k == 0 else by
            # the corner on this ring point's side of the iris
            ix = pts[idx[s, 3], 0]
            iy = pts[idx[s, 3], 1]
            ux = pts[idx[s, 4], 0]
            uy = pts[idx[s, 4], 1]
            if (ix - rx) ** 2 + (iy - ry) ** 2 <= (ux - rx) ** 2 + (uy - ry) ** 2:
                v = _sclera_side(img, rx, ry, ix, iy)
            else:
                v = _sclera_side(img, rx, ry, ux, uy)
            if not np.isnan(v) and (np.isnan(sclera) or v > sclera):
                sclera = v
        out[s, SCLERA_LUMA] = sclera
