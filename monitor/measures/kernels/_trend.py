"""Robust trend of a curve: the Theil–Sen slope (median of all pairwise slopes)."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def theil_sen_slope(t, y):
    """Median of (y[j] − y[i]) / (t[j] − t[i]) over pairs i < j with finite values and t[j] > t[i];
    NaN with fewer than two usable points."""
    n = t.shape[0]
    m = 0
    for i in range(n):
        if np.isfinite(y[i]) and np.isfinite(t[i]):
            m += 1
    if m < 2:
        return np.nan
    slopes = np.empty(m * (m - 1) // 2)
    k = 0
    for i in range(n):
        if not (np.isfinite(y[i]) and np.isfinite(t[i])):
            continue
        for j in range(i + 1, n):
            if not (np.isfinite(y[j]) and np.isfinite(t[j])):
                continue
            dt = t[j] - t[i]
            if dt > 0:
                slopes[k] = (y[j] - y[i]) / dt
                k += 1
    if k == 0:
        return np.nan
    s = np.sort(slopes[:k])
    if k % 2 == 1:
        return s[k // 2]
    return 0.5 * (s[k // 2 - 1] + s[k // 2])
