"""Eyelid fatigability curves (pure computation; see docs/measures.md, "Fatigability").

A curve is one eye's aperture or MRD1 over a window (a sustained-gaze step, or any window chosen by
the user). Frames with the eye closed, and the two frames after it reopens, are left out, so blinks
never look like ptosis. The values are median-filtered into half-second bins; from the bins come the
baseline (first 3 s), the end value (last 3 s), the drop in mm and %, a robust Theil–Sen slope in
mm/min, and the time to the first sustained 2 mm drop. Signs: the drop (baseline − end) and the drop
rate (−slope) are positive when the lid lowers; the slope is the value's own trend (negative then).
No percentage is given of a baseline under MIN_PCT_BASELINE_MM. Each figure has its uncertainty: the
SD of the bins in the baseline and end windows, the drop's standard error from them, and the residual
SD of the bins about the Theil–Sen line with the slope's standard error from it.

``FatigueTracker.update()`` is the incremental form for live use; ``fatigue_curve()`` runs the same
tracker over a recorded series, so live and offline figures agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from monitor.measures.kernels import theil_sen

MIN_PCT_BASELINE_MM = 1.0  # a drop in % of a baseline nearer zero than this is noise, not a figure


@dataclass(frozen=True)
class FatigueOptions:
    bin_s: float = 0.5  # median-filter bins
    baseline_s: float = 3.0
    end_s: float = 3.0
    drop_mm: float = 2.0  # "time to the first sustained drop" of this many mm below baseline
    sustain_s: float = 3.0  # … held for this long
    reopen_frames: int = 2  # frames left out after the eye reopens


@dataclass(frozen=True)
class FatigueCurve:
    """One eye's fatigability over a window. Lengths in mm, times in s from the window start."""

    baseline_mm: float
    end_mm: float
    drop_mm: float
    drop_pct: float
    slope_mm_per_min: float
    time_to_drop_s: float | None
    duration_s: float
    frames_used: int
    frames_closed: int
    bin_t_s: tuple = field(repr=False, default=())
    bin_mm: tuple = field(repr=False, default=())
    baseline_sd_mm: float = math.nan  # SD of the bins in the baseline window
    end_sd_mm: float = math.nan  # SD of the bins in the end window
    drop_se_mm: float = math.nan  # standard error of the drop, from the two SDs
    residual_sd_mm: float = math.nan  # SD of the bins about the fitted line
    slope_se_mm_per_min: float = math.nan  # standard error of the slope, from the residual SD

    @property
    def drop_rate_mm_per_min(self) -> float:
        """How fast the lid lowers: −slope, so positive when the lid lowers, like the drop."""
        return 0.0 - self.slope_mm_per_min  # never −0.0

    def as_json(self, with_bins: bool = False) -> dict:
        def r(v):
            return None if v is None or not math.isfinite(v) else round(float(v), 3)

        out = {"baseline_mm": r(self.baseline_mm), "end_mm": r(self.end_mm), "drop_mm": r(self.drop_mm),
               "drop_pct": r(self.drop_pct), "slope_mm_per_min": r(self.slope_mm_per_min),
               "drop_rate_mm_per_min": r(self.drop_rate_mm_per_min),
               "time_to_drop_s": r(self.time_to_drop_s), "duration_s": r(self.duration_s),
               "frames_used": self.frames_used, "frames_closed": self.frames_closed,
               "baseline_sd_mm": r(self.baseline_sd_mm), "end_sd_mm": r(self.end_sd_mm),
               "drop_se_mm": r(self.drop_se_mm), "residual_sd_mm": r(self.residual_sd_mm),
               "slope_se_mm_per_min": r(self.slope_se_mm_per_min)}
        if with_bins:
            out["bins"] = {"t_s": [r(t) for t in self.bin_t_s], "mm": [r(v) for v in self.bin_mm]}
        return out


class FatigueTracker:
    """Incremental fatigability curve: ``update(t_s, value_mm, closed)`` once per frame (O(1)),
    ``curve()`` whenever a figure is wanted (Theil–Sen over the bins)."""

    def __init__(self, options: FatigueOptions = FatigueOptions()) -> None:
        self.opt = options
        self.t0: float | None = None
        self.t_last: float | None = None
        self._bin_index = 0
        self._bin_values: list[float] = []
        self.bin_t: list[float] = []
        self.bin_v: list[float] = []
        self.frames_used = 0
        self.frames_closed = 0
        self._since_open = options.reopen_frames

    def update(self, t_s: float, value_mm: float, closed: bool = False) -> None:
        if self.t0 is None:
            self.t0 = t_s
        if self.t_last is not None and t_s < self.t_last:
            raise ValueError(f"time went backwards: {t_s} s after {self.t_last} s")
        self.t_last = t_s
        idx = int((t_s - self.t0) // self.opt.bin_s)
        while idx > self._bin_index:
            self._close_bin()
        if closed:
            self.frames_closed += 1
            self._since_open = 0
            return
        if self._since_open < self.opt.reopen_frames:
            self._since_open += 1
            return
        if value_mm is not None and math.isfinite(value_mm):
            self._bin_values.append(float(value_mm))
            self.frames_used += 1

    def _close_bin(self) -> None:
        v = float(np.median(self._bin_values)) if self._bin_values else math.nan
        self.bin_t.append((self._bin_index + 0.5) * self.opt.bin_s)
        self.bin_v.append(v)
        self._bin_values = []
        self._bin_index += 1

    def _bins(self) -> tuple[np.ndarray, np.ndarray]:
        t = list(self.bin_t)
        v = list(self.bin_v)
        if self._bin_values:  # the bin still filling
            t.append((self._bin_index + 0.5) * self.opt.bin_s)
            v.append(float(np.median(self._bin_values)))
        return np.array(t, float), np.array(v, float)

    def curve(self) -> FatigueCurve:
        t, v = self._bins()
        duration = 0.0 if self.t0 is None else float(self.t_last - self.t0)
        o = self.opt
        head, tail = (v[t <= o.baseline_s], v[t >= duration - o.end_s]) if t.size else (v, v)
        base, end = _nanmedian(head), _nanmedian(tail)
        drop = base - end
        pct = 100.0 * drop / base if math.isfinite(base) and base >= MIN_PCT_BASELINE_MM else math.nan
        slope = theil_sen(t, v) * 60.0 if np.isfinite(v).sum() >= 2 else math.nan
        (sd_b, n_b), (sd_e, n_e) = _sd(head), _sd(tail)
        drop_se = math.sqrt(sd_b ** 2 / n_b + sd_e ** 2 / n_e) if n_b >= 2 and n_e >= 2 else math.nan
        resid_sd, slope_se = _fit_errors(t, v, slope / 60.0)
        return FatigueCurve(base, end, drop, pct, slope, _time_to_drop(t, v, base, o), duration,
                            self.frames_used, self.frames_closed, tuple(t.tolist()), tuple(v.tolist()),
                            sd_b, sd_e, drop_se, resid_sd, slope_se * 60.0)


def _sd(x: np.ndarray) -> tuple[float, int]:
    """Sample SD of the finite values and their count (NaN below two)."""
    x = x[np.isfinite(x)]
    return (float(np.std(x, ddof=1)) if x.size >= 2 else math.nan), int(x.size)


def _fit_errors(t: np.ndarray, v: np.ndarray, slope_per_s: float) -> tuple[float, float]:
    """Residual SD of the bins about the line with this slope (through their median offset), and the
    slope's standard error from it (per second)."""
    ok = np.isfinite(v)
    if ok.sum() < 3 or not math.isfinite(slope_per_s):
        return math.nan, math.nan
    t, v = t[ok], v[ok]
    resid = v - slope_per_s * t
    resid = resid - np.median(resid)
    sd = float(np.sqrt(np.sum(resid ** 2) / (resid.size - 2)))
    spread = float(np.sum((t - t.mean()) ** 2))
    return sd, (sd / math.sqrt(spread) if spread > 0 else math.nan)


def _nanmedian(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def _time_to_drop(t: np.ndarray, v: np.ndarray, base: float, o: FatigueOptions) -> float | None:
    """Start of the first run of bins, after the baseline, that stays ≥ drop_mm below baseline for
    sustain_s (bins without a value neither break nor make a run)."""
    if not math.isfinite(base):
        return None
    need = max(1, int(round(o.sustain_s / o.bin_s)))
    start = None
    count = 0
    for ti, vi in zip(t, v):
        if ti <= o.baseline_s or not math.isfinite(vi):
            continue
        if vi <= base - o.drop_mm:
            if start is None:
                start, count = ti - o.bin_s / 2, 0
            count += 1
            if count >= need:
                return float(start)
        else:
            start, count = None, 0
    return None


def fatigue_curve(t_s, values_mm, closed=None, options: FatigueOptions = FatigueOptions()) -> FatigueCurve:
    """The fatigability curve of a recorded window (arrays of one length; closed may be None)."""
    t = np.asarray(t_s, float)
    v = np.asarray(values_mm, float)
    c = np.zeros(t.shape, bool) if closed is None else np.asarray(closed, bool)
    if not (t.ndim == 1 and t.shape == v.shape == c.shape):
        raise ValueError(f"t_s, values_mm and closed must be 1-D of one length, got {t.shape}, {v.shape}, {c.shape}")
    tracker = FatigueTracker(options)
    for ti, vi, ci in zip(t, v, c):
        tracker.update(float(ti), float(vi), bool(ci))
    return tracker.curve()
