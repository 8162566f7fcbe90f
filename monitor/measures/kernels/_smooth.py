"""Running median filter for measure curves."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def median_filter_nan(x, width, out):
    """Centred running median of odd ``width`` that ignores NaN; windows shrink at the ends; a
    window with no finite value gives NaN."""
    n = x.shape[0]
    half = width // 2
    buf = np.empty(width)
    for i in range(n):
        k = 0
        for j in range(max(0, i - half), min(n, i + half + 1)):
            v = x[j]
            if not np.isnan(v):
                buf[k] = v
                k += 1
        if k == 0:
            out[i] = np.nan
        else:
            s = np.sort(buf[:k])
            if k % 2 == 1:
                out[i] = s[k // 2]
            else:
                out[i] = 0.5 * (s[k // 2 - 1] + s[k // 2])
