"""The ptosis fatigability test and the camera-measurable QMG items (pure; docs/measures.md, "Ptosis test").

Sustained upgaze (up to 60 s, ended early once MRD1 has dropped 2 mm for 3 s), eyes closed to rest,
then a short upgaze again. Per eye: MRD1 over time (half-second bins), time to a 2 mm drop, the drop,
the slope, and the recovery after rest (re-test MRD1 minus end-of-upgaze MRD1), each with its
uncertainty. From them, and from the lateral-gaze steps, come camera estimates of two items of the
Quantitative Myasthenia Gravis score: seconds until ptosis on upgaze, and seconds the gaze is held
on lateral gaze (the QMG item itself scores diplopia, which a camera cannot see). These are labelled
estimates of single items, never a QMG total, and not a diagnosis.
"""

from __future__ import annotations

import math

import numpy as np

from monitor.measures.fatigue import FatigueCurve, FatigueOptions, FatigueTracker, fatigue_curve

QMG_MAX_S = 60.0  # the QMG times these items up to 60 s
GAZE_LOST_SHARE = 0.5  # gaze is lost when the excursion falls below this share of its first seconds
CAMERA_NOTE = ("camera estimate of one QMG item from the video, not a QMG total and not a clinical score; "
               "spontaneous (score 3) findings are not estimated")


def qmg_seconds_band(seconds: float | None, observed_s: float) -> int | None:
    """The QMG band of a timed item: 2 for 1–10 s, 1 for 11–60 s, 0 when nothing happened within 60 s;
    None when nothing happened but the test was shorter than 60 s (censored)."""
    if seconds is None:
        return 0 if observed_s >= QMG_MAX_S - 0.5 else None
    return 2 if seconds <= 10.0 else 1 if seconds <= QMG_MAX_S else 0


def _r(v, nd: int = 3):
    return None if v is None or not math.isfinite(v) else round(float(v), nd)


def _window(values: np.ndarray) -> tuple[float, float, int]:
    x = values[np.isfinite(values)]
    if x.size == 0:
        return math.nan, math.nan, 0
    return float(np.median(x)), (float(np.std(x, ddof=1)) if x.size >= 2 else math.nan), int(x.size)


def eye_result(curve: FatigueCurve, retest_mm: np.ndarray | None, options: FatigueOptions = FatigueOptions()) -> dict:
    """One eye's ptosis-test figures from its MRD1 curve over the upgaze step and its MRD1 values in
    the re-test (None: no re-test)."""
    out = {"mrd1_bins": {"t_s": [_r(t) for t in curve.bin_t_s], "mm": [_r(v) for v in curve.bin_mm]},
           "baseline_mm": _r(curve.baseline_mm), "baseline_sd_mm": _r(curve.baseline_sd_mm),
           "end_mm": _r(curve.end_mm), "end_sd_mm": _r(curve.end_sd_mm),
           "drop_mm": _r(curve.drop_mm), "drop_se_mm": _r(curve.drop_se_mm),
           "slope_mm_per_min": _r(curve.slope_mm_per_min), "slope_se_mm_per_min": _r(curve.slope_se_mm_per_min),
           "residual_sd_mm": _r(curve.residual_sd_mm),
           "time_to_drop_s": _r(curve.time_to_drop_s), "time_resolution_s": options.bin_s,
           "duration_s": _r(curve.duration_s)}
    if retest_mm is not None:
        med, sd, n = _window(np.asarray(retest_mm, float))
        end_sd = curve.end_sd_mm
        se = math.sqrt(sd ** 2 / n + end_sd ** 2 / max(1, int(round(options.end_s / options.bin_s)))) \
            if n >= 2 and math.isfinite(end_sd) else math.nan
        out.update(retest_mm=_r(med), retest_sd_mm=_r(sd), recovery_mm=_r(med - curve.end_mm), recovery_se_mm=_r(se))
    return out


def ptosis_test(t_s, mrd1: dict[str, np.ndarray], closed: dict[str, np.ndarray],
                retest_mrd1: dict[str, np.ndarray] | None = None, rest_performed: bool | None = None) -> dict:
    """The ptosis test's result per eye (``mrd1`` and ``closed``: the upgaze step's frames per side;
    ``retest_mrd1``: the re-test's MRD1 per side) and the camera estimate of the QMG ptosis item (the
    eye that drops first)."""
    t = np.asarray(t_s, float)
    t = t - t[0]
    eyes = {}
    for side, values in mrd1.items():
        curve = fatigue_curve(t, values, closed.get(side))
        eyes[side] = eye_result(curve, None if retest_mrd1 is None else retest_mrd1.get(side))
    times = [e["time_to_drop_s"] for e in eyes.values() if e["time_to_drop_s"] is not None]
    first = min(times) if times else None
    observed = float(t[-1]) if t.size else 0.0
    item = {"seconds_to_ptosis": first, "observed_s": round(observed, 3), "censored": first is None,
            "band_estimate": qmg_seconds_band(first, observed), "note": CAMERA_NOTE}
    return {"eyes": eyes, "rest_performed": rest_performed, "qmg_ptosis_camera_estimate": item}


def gaze_hold(t_s, along_mm, options: FatigueOptions = FatigueOptions()) -> dict | None:
    """How long a lateral gaze was held: the iris excursion toward the asked side (mm from the neutral
    position, per frame), binned like a fatigue curve; the gaze is lost at the start of the first
    3 s run below GAZE_LOST_SHARE of its first seconds. None when the first seconds show no excursion."""
    t = np.asarray(t_s, float)
    if t.size < 2:
        return None
    t = t - t[0]
    first = fatigue_curve(t, along_mm, options=options)
    if not (math.isfinite(first.baseline_mm) and first.baseline_mm > 0):
        return None
    lost_at = (1.0 - GAZE_LOST_SHARE) * first.baseline_mm
    curve = fatigue_curve(t, along_mm, options=FatigueOptions(**{**options.__dict__, "drop_mm": lost_at}))
    lost = curve.time_to_drop_s
    return {"initial_mm": _r(first.baseline_mm), "end_mm": _r(curve.end_mm), "lost_after_s": _r(lost),
            "held_s": _r(lost if lost is not None else curve.duration_s), "censored": lost is None,
            "band_estimate": qmg_seconds_band(lost, curve.duration_s), "note": CAMERA_NOTE}


def stop_reason(trackers: dict[str, FatigueTracker]) -> str | None:
    """The live upgaze step's early end: the reason once an eye's MRD1 (FatigueTracker per side, fed
    frame by frame) has dropped the tracker's drop_mm below its first seconds for sustain_s; else None."""
    for side, tracker in trackers.items():
        curve = tracker.curve()
        if curve.time_to_drop_s is not None:
            return (f"the {side} lid dropped {tracker.opt.drop_mm:g} mm (MRD1) after "
                    f"{curve.time_to_drop_s:.1f} s of upgaze")
    return None
