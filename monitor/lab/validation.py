"""The synthetic validation benchmark of the measures (docs/validation.md; scripts/validate_measures.py).

Real face video is warped to plant known weakness — one upper lid lowered progressively by a known
fraction of its fissure, one mouth corner lowered by a known distance — and the measures are scored
side by side with the raw landmark measures on the very same frames: the fraction of each planted
change recovered, whether the weaker side is named correctly, the false change on the unwarped clip,
jitter on a still face, and the sensitivity to head roll and yaw (the face re-rendered turned from its
own 3D landmark mesh).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from calibration.scale import IrisScale
from engines import assets, create_runner
from monitor.capture.sources import read_rgb_frames
from monitor.lab import synthetic
from monitor.measures.asymmetry import static_asymmetry
from monitor.measures.face_model import SIDES
from monitor.measures.fatigue import fatigue_curve
from monitor.measures.frame import compute_measures

LID_MEASURES = ("eye_aperture", "mrd1", "eye_aperture_raw", "mrd1_raw")
MOUTH_MEASURES = ("commissure_height", "commissure_height_raw")


@dataclass
class Clip:
    name: str
    frames: list  # RGB uint8
    fps: float


def still_clip(seconds: float, fps: float = 30.0, first: int = 16) -> Clip:
    """The neutral first ``first`` frames of the sample clip, played back and forth for ``seconds``:
    a real, nearly still face with real sensor noise and small head motion."""
    base, _ = read_rgb_frames(assets.sample_path("single_face.mp4"), first)
    if len(base) < 2:
        raise RuntimeError("the sample clip could not be read")
    cycle = base + base[-2:0:-1]
    n = int(round(seconds * fps))
    return Clip(f"single_face.mp4 frames 0–{first - 1}, back and forth", [cycle[i % len(cycle)] for i in range(n)], fps)


def run_measures(frames: list, fps: float, warp: Callable[[int, np.ndarray], np.ndarray] | None = None,
                 backend: str = "mediapipe", landmark_noise_px: float = 0.0, seed: int = 0, **options) -> dict:
    """Landmarks + measures for each (optionally warped) frame with a fresh model and scale.
    Returns {column: array} over frames, with the landmarks under "landmarks", the blendshapes
    under "blendshapes" and the matrices under "matrix". ``landmark_noise_px`` adds Gaussian noise of
    that standard deviation to the landmarks before the measures (how much the measures themselves
    move for a landmark change of that size; ``parity``)."""

    rows, lms, mats, blends = [], [], [], []
    scale = IrisScale()
    rng = np.random.default_rng(seed)
    with create_runner(backend, **options) as runner:
        for i, f in enumerate(frames):
            img = f if warp is None else warp(i, f)
            res = runner.infer(img, int(i * 1000 / fps) + 1)
            if landmark_noise_px and res.face:
                noise = rng.normal(0.0, landmark_noise_px, res.landmarks_px.shape)
                res = replace(res, landmarks_px=(res.landmarks_px + noise).astype(np.float32))
            rows.append(compute_measures(res, scale, img))
            lms.append(res.landmarks_px if res.face else np.full((478, 3), np.nan, np.float32))
            mats.append(res.matrix if res.face else np.full((4, 4), np.nan, np.float32))
            blends.append(res.blendshapes if res.face else np.full(52, np.nan, np.float32))
    out = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    out["landmarks"] = np.stack(lms)
    out["matrix"] = np.stack(mats)
    out["blendshapes"] = np.stack(blends)
    out["t_s"] = np.arange(len(frames)) / fps
    return out


def _col(run: dict, measure: str, side: str) -> np.ndarray:
    return np.asarray(run[f"{measure}_{side}_mm"], float)


def head_k(run: dict) -> np.ndarray:
    """mm per image pixel along the head's vertical axis, per frame."""
    m = run["matrix"]
    return run["mm_per_px"] / np.hypot(m[:, 0, 1], m[:, 1, 1])


def recovered_fraction(base: np.ndarray, warped: np.ndarray, planted: np.ndarray, sign: float) -> float:
    """Least-squares fraction of the planted change (through the origin) seen in warped − base."""
    d = sign * (warped - base)
    ok = np.isfinite(d) & np.isfinite(planted) & (planted > 0)
    if ok.sum() < 3:
        return math.nan
    return float(np.sum(d[ok] * planted[ok]) / np.sum(planted[ok] ** 2))


def _end_medians(run: dict, seconds: float) -> dict:
    t = run["t_s"]
    m = t >= t[-1] - seconds
    out = {}
    for k, v in run.items():
        if k.endswith(("_mm", "_deg", "_mm2")) and np.asarray(v).dtype.kind == "f":
            x = np.asarray(v, float)[m]
            x = x[np.isfinite(x)]
            out[k] = float(np.median(x)) if x.size else math.nan
    return out


def lid_case(clip: Clip, base: dict, side: str, fraction: float) -> dict:
    t = base["t_s"]
    ramp = t / t[-1]
    fiss = np.array([synthetic.fissure_px(lm, side) for lm in base["landmarks"]])
    delta_px = fraction * fiss * ramp
    warped = run_measures(clip.frames, clip.fps,
                          lambda i, f: synthetic.lower_upper_lid(f, base["landmarks"][i], side, float(delta_px[i])))
    planted_mm = delta_px * head_k(base)
    other = "right" if side == "left" else "left"
    out = {"case": f"upper lid, {side}, {int(round(fraction * 100))}% of the fissure over {t[-1]:.0f} s",
           "planted_end_mm": round(float(np.nanmedian(planted_mm[-int(clip.fps):])), 3), "recovered": {},
           "other_eye_change_mm": {}}
    for m in LID_MEASURES:
        out["recovered"][m] = round(recovered_fraction(_col(base, m, side), _col(warped, m, side), planted_mm, -1.0), 3)
        d = _col(warped, m, other) - _col(base, m, other)
        out["other_eye_change_mm"][m] = round(float(np.nanmedian(np.abs(d[-int(3 * clip.fps):]))), 3)
    asym = static_asymmetry(_end_medians(warped, 3.0))
    out["weaker_side"] = {k: asym.get(f"{k}_mm", {}).get("weaker_side") for k in ("eye_aperture", "mrd1")}
    out["weaker_side_correct"] = all(v == side for v in out["weaker_side"].values())
    return out


def mouth_case(clip: Clip, base: dict, side: str, mm: float) -> dict:
    t = base["t_s"]
    k = head_k(base)
    delta_px = mm / k * (t / t[-1])
    warped = run_measures(clip.frames, clip.fps,
                          lambda i, f: synthetic.lower_mouth_corner(f, base["landmarks"][i], side, float(delta_px[i])))
    planted_mm = delta_px * k
    other = "right" if side == "left" else "left"

    def diff(run, m):  # the planted side's commissure height minus the other side's
        return _col(run, m, side) - _col(run, m, other)
    out = {"case": f"mouth corner, {side}, {mm:g} mm over {t[-1]:.0f} s", "planted_end_mm": mm, "recovered": {}}
    for m in MOUTH_MEASURES:
        out["recovered"][m] = round(recovered_fraction(_col(base, m, side), _col(warped, m, side), planted_mm, 1.0), 3)
        out["recovered"][f"{m}_l_minus_r"] = round(recovered_fraction(diff(base, m), diff(warped, m), planted_mm, 1.0), 3)
    asym = static_asymmetry(_end_medians(warped, 3.0))
    out["weaker_side"] = {"commissure_height": asym.get("commissure_height_mm", {}).get("weaker_side")}
    out["weaker_side_correct"] = out["weaker_side"]["commissure_height"] == side
    return out


def false_change(base: dict) -> dict:
    """|drop| in % of baseline over the unwarped clip (fatigue curve: first vs last 3 s)."""
    out = {}
    for m in LID_MEASURES + MOUTH_MEASURES:
        for s in SIDES:
            closed = np.asarray(base[f"eye_closed_{s}"], bool)
            c = fatigue_curve(base["t_s"], _col(base, m, s), closed)
            out[f"{m}_{s}"] = None if not math.isfinite(c.drop_pct) else round(abs(c.drop_pct), 2)
    return out


def jitter(base: dict) -> dict:
    """Frame-to-frame noise of each measure on the still clip: SD of successive differences / √2, mm."""
    out = {}
    for m in LID_MEASURES + MOUTH_MEASURES + ("brow_height",):
        for s in SIDES:
            x = _col(base, m, s)
            d = np.diff(x)
            d = d[np.isfinite(d)]
            out[f"{m}_{s}"] = round(float(np.std(d) / math.sqrt(2)), 3) if d.size > 2 else None
    return out


def pose_sensitivity(clip: Clip, base: dict, kind: str, degrees: float, seconds: float = 10.0) -> dict:
    """Median |change| of each measure when the first ``seconds`` of the clip are seen with the head
    rolled (the whole frame rotated) or turned (yaw: the face re-rendered from its 3D mesh)."""
    n = min(len(clip.frames), int(round(seconds * clip.fps)))
    lm = base["landmarks"]
    if kind == "roll":
        warp = lambda i, f: synthetic.rotate(f, tuple(np.nanmean(lm[i, :, :2], 0)), degrees)  # noqa: E731
    else:
        warp = lambda i, f: synthetic.turn_head(f, lm[i], degrees)  # noqa: E731
    run = run_measures(clip.frames[:n], clip.fps, warp)
    out = {"case": f"{kind} {degrees:+g}°", "frames": n,
           "measured_angle_deg": round(float(np.nanmedian(run[f"{kind}_deg"] - base[f"{kind}_deg"][:n])), 2),
           "median_abs_change_mm": {}}
    for m in ("eye_aperture", "mrd1", "eye_aperture_raw", "commissure_height", "commissure_height_raw", "brow_height"):
        d = [np.abs(_col(run, m, s) - _col(base, m, s)[:n]) for s in SIDES]
        out["median_abs_change_mm"][m] = round(float(np.nanmedian(np.concatenate(d))), 3)
    return out


def run_validation(seconds: float = 30.0, fps: float = 30.0, quick: bool = False, log=print) -> dict:
    t0 = time.perf_counter()
    clip = still_clip(seconds, fps)
    log(f"clip: {clip.name}, {len(clip.frames)} frames at {fps:g} fps")
    base = run_measures(clip.frames, clip.fps)
    results = {"clip": clip.name, "frames": len(clip.frames), "fps": fps, "seconds": seconds,
               "false_change_pct": false_change(base), "jitter_mm": jitter(base), "planted": [], "pose": []}
    lid_cases = [("left", 0.25), ("right", 0.5)] if quick else [("left", 0.25), ("left", 0.5), ("right", 0.25), ("right", 0.5)]
    for side, frac in lid_cases:
        log(f"lid drop: {side} {frac:.0%}")
        results["planted"].append(lid_case(clip, base, side, frac))
    for side, mm in ([("left", 3.0)] if quick else [("left", 2.0), ("right", 4.0)]):
        log(f"mouth droop: {side} {mm:g} mm")
        results["planted"].append(mouth_case(clip, base, side, mm))
    if not quick:
        for kind, deg in (("roll", 10.0), ("roll", -20.0), ("yaw", 15.0), ("yaw", -15.0), ("yaw", 30.0)):
            log(f"pose: {kind} {deg:+g}°")
            results["pose"].append(pose_sensitivity(clip, base, kind, deg))
    results["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return results


def markdown(results: dict) -> str:
    lines = [f"Clip: {results['clip']}; {results['frames']} frames at {results['fps']:g} fps.", "",
             "| planted change | at the end | eye aperture (refined) | MRD1 (refined) | aperture (raw landmarks) | MRD1 (raw landmarks) | weaker side named |",
             "|---|---|---|---|---|---|---|"]
    for p in results["planted"]:
        r = p["recovered"]

        def pct(k):
            return f"{100 * r[k]:.0f}%" if k in r and r[k] is not None and math.isfinite(r[k]) else "–"
        if "commissure_height" in r:
            lines.append(f"| {p['case']} | {p['planted_end_mm']:.2f} mm | commissure height (refined): "
                         f"{pct('commissure_height')}; its difference from the other side: "
                         f"{pct('commissure_height_l_minus_r')} | | commissure height (raw landmarks): "
                         f"{pct('commissure_height_raw')}; difference: {pct('commissure_height_raw_l_minus_r')} | | "
                         f"{'yes' if p['weaker_side_correct'] else 'NO'} |")
        else:
            lines.append(f"| {p['case']} | {p['planted_end_mm']:.2f} mm | {pct('eye_aperture')} | {pct('mrd1')} | "
                         f"{pct('eye_aperture_raw')} | {pct('mrd1_raw')} | {'yes' if p['weaker_side_correct'] else 'NO'} |")
    lines += ["", "| unwarped clip | " + " | ".join(SIDES) + " |", "|---|---|---|"]
    for m in LID_MEASURES + MOUTH_MEASURES:
        fc = results["false_change_pct"]
        jt = results["jitter_mm"]
        lines.append(f"| {m}: false change % / jitter mm | " + " | ".join(
            f"{fc[f'{m}_{s}']} / {jt[f'{m}_{s}']}" for s in SIDES) + " |")
    if results["pose"]:
        lines += ["", "| pose | angle the model reports | aperture | MRD1 | aperture (raw) | commissure height | "
                  "commissure height (raw) | brow height |", "|---|---|---|---|---|---|---|---|"]
        for p in results["pose"]:
            c = p["median_abs_change_mm"]
            lines.append(f"| {p['case']} | {p['measured_angle_deg']:+.1f}° | {c['eye_aperture']} | {c['mrd1']} | "
                         f"{c['eye_aperture_raw']} | {c['commissure_height']} | {c['commissure_height_raw']} | {c['brow_height']} |")
    return "\n".join(lines)
