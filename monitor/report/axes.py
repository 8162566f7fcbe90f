"""Axis limits and step labels that keep a plot readable (pure numpy, plus matplotlib text extents).

- ``robust_limits``: y limits from the bulk of the values (percentiles), so one spike cannot stretch
  the axis, with a minimum span, so noise is not magnified into a slope.
- ``span_limits``: limits around values that must include some references (zero on a difference
  axis, a baseline line), with the same minimum span.
- ``place_labels``: rows for text labels along the x axis, so that no two labels overlap.
"""

from __future__ import annotations

import numpy as np


def _finite(values) -> np.ndarray:
    x = np.asarray(values, float).ravel()
    return x[np.isfinite(x)]


def span_limits(values, min_span: float, include=(), pad: float = 0.08) -> tuple[float, float]:
    """Limits covering the finite ``values`` and every value in ``include``, padded, and at least
    ``min_span`` wide (centred on the data); (−min_span/2, min_span/2) when there is nothing."""
    x = np.concatenate([_finite(values), _finite(list(include))])
    if x.size == 0:
        return -min_span / 2, min_span / 2
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo
    lo, hi = lo - pad * span, hi + pad * span
    if hi - lo < min_span:
        mid = (lo + hi) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
        for v in _finite(list(include)):  # a reference near the edge stays inside after centring
            lo, hi = min(lo, v), max(hi, v)
    return lo, hi


def robust_limits(values, min_span: float, q: float = 1.0, pad: float = 0.1) -> tuple[float, float]:
    """Limits from the q-th to the (100−q)-th percentile of the finite values, padded by ``pad`` of
    that range, at least ``min_span`` wide: a few outlying frames fall outside the axis."""
    x = _finite(values)
    if x.size == 0:
        return -min_span / 2, min_span / 2
    lo, hi = np.percentile(x, [q, 100 - q])
    return span_limits([lo, hi], min_span, pad=pad)


def outside(values, limits: tuple[float, float]) -> int:
    """How many finite values lie outside the limits (shown, not hidden, under the plot)."""
    x = _finite(values)
    return int(((x < limits[0]) | (x > limits[1])).sum())


def place_labels(extents: list[tuple[float, float]], gap: float = 3.0) -> list[int]:
    """A row (0, 1, …) for each label, given each label's horizontal extent (x0, x1) in pixels, in
    order: the lowest row where it keeps ``gap`` pixels from every label already on that row."""
    rows: list[list[tuple[float, float]]] = []
    out = []
    for x0, x1 in extents:
        for i, placed in enumerate(rows):
            if all(x1 + gap <= a or x0 >= b + gap for a, b in placed):
                placed.append((x0, x1))
                out.append(i)
                break
        else:
            rows.append([(x0, x1)])
            out.append(len(rows) - 1)
    return out


def boxes_overlap(a, b) -> bool:
    """Whether two matplotlib Bbox-like boxes (x0, y0, x1, y1) share any area."""
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1
