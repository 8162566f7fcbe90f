"""Datasets of aligned face clips, built from logged sessions or from folders of videos.

Both sources come down to a video and one row per frame (face found, landmarks, measures, protocol
step): a logged session has them in its kept video (opt-in) and its series; a folder video is analysed
here with the landmark model. Clips are ``frames`` consecutive frames with a face inside one protocol
step (the first ``trim`` frames of each step, its transition, are left out; frames the protocol did not
count carry no step and are never used), cut without overlap. A folder video has no steps: its clips
run along stretches with a face.

Layout of a dataset folder (written under a temporary name and renamed when whole):

    dataset.json   frames, size, sources, subjects, feature names, creation date
    index.csv      one row per clip: clip file, subject, session, step, frames spanned, labels
    features.csv   landmark features per clip (for the interpretable baselines)
    clips/*.npy    uint8 (frames, size, size, 3) RGB crops
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from calibration.scale import IrisScale
from engines import BLENDSHAPE_NAMES, create_runner
from monitor import __version__
from monitor.capture.still import VIDEO_SUFFIXES
from monitor.cnn.card import ModelError
from monitor.cnn.crops import align_crop
from monitor.lab.cnn.labels import LabelsError, SubjectLabel
from monitor.measures.frame import compute_measures

TRIM_FRAMES = 15  # 0.5 s at 30 fps: a step's first frames are the move into it
# per-frame measures summarised per clip for the baselines (docs/cnn.md)
FEATURE_MEASURES = ("eye_aperture", "mrd1", "brow_height", "commissure_height")
FEATURE_BLENDSHAPES = ("eyeBlinkLeft", "eyeBlinkRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
                       "mouthSmileLeft", "mouthSmileRight", "jawOpen", "mouthPucker", "eyeWideLeft", "eyeWideRight")


def feature_names() -> list[str]:
    names = []
    for m in FEATURE_MEASURES:
        for side in ("left", "right"):
            names += [f"{m}_{side}_median_mm", f"{m}_{side}_change_mm"]
        names.append(f"{m}_asymmetry_mm")
    return names + [f"{b}_median" for b in FEATURE_BLENDSHAPES]


def clip_features(columns: dict[str, np.ndarray]) -> list[float]:
    """Landmark features of one clip from its per-frame columns (NaN where nothing was measured).

    ``*_median_mm``: median over the clip; ``*_change_mm``: median of the last quarter minus the first
    quarter (a lid that lowers during the clip has a negative change); ``*_asymmetry_mm``: |left − right|
    of the medians; blendshapes: medians (0–1).
    """
    def med(a):
        a = a[np.isfinite(a)]
        return float(np.median(a)) if a.size else float("nan")

    out = []
    for m in FEATURE_MEASURES:
        meds = {}
        for side in ("left", "right"):
            a = np.asarray(columns.get(f"{m}_{side}_mm", []), float)
            q = max(1, len(a) // 4)
            meds[side] = med(a)
            out += [meds[side], med(a[-q:]) - med(a[:q]) if len(a) else float("nan")]
        out.append(abs(meds["left"] - meds["right"]))
    for b in FEATURE_BLENDSHAPES:
        out.append(med(np.asarray(columns.get(b, []), float)))
    return out


def cut_clips(face: np.ndarray, labels: list[str], length: int, trim: int, need_step: bool) -> list[tuple[int, int, str]]:
    """(start, end exclusive, step) of each clip: runs of frames with a face and one label, the first
    ``trim`` frames of a labelled run dropped, cut without overlap. With ``need_step`` unlabelled frames
    are never used."""
    clips = []
    n = len(face)
    i = 0
    while i < n:
        j = i
        while j < n and face[j] and labels[j] == labels[i]:
            j += 1
        if j == i:
            i += 1
            continue
        label = labels[i]
        if label or not need_step:
            start = i + (trim if label else 0)
            while start + length <= j:
                clips.append((start, start + length, label.split("#")[0]))
                start += length
        i = j
    return clips


@dataclass
class VideoItem:
    subject: str
    session: str  # session id, or the video's path relative to the folder
    video: Path
    series: object | None = None  # pyarrow Table of a logged session (None: analyse the video here)


def read_frames(path: Path) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise ModelError(f"cannot open video {path}")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def _analysed(item: VideoItem) -> tuple[list[np.ndarray], dict]:
    """Frames and per-frame columns (face, landmarks, step labels, measures) of one video."""

    frames = list(read_frames(item.video))
    if item.series is not None:
        t = item.series
        if t.num_rows != len(frames):
            raise ModelError(f"session {item.session}: its kept video has {len(frames)} frames and its series "
                             f"{t.num_rows} rows (frames were dropped while keeping it); it cannot be cut into clips")
        cols = {c: np.array(t.column(c).to_pylist(), dtype=float) for c in t.column_names
                if c.endswith("_mm") or c in BLENDSHAPE_NAMES}
        lms = t.column("landmarks_px").to_pylist() if "landmarks_px" in t.column_names else [None] * len(frames)
        cols["landmarks"] = [None if v is None else np.asarray(v, np.float32).reshape(478, 3) for v in lms]
        cols["face"] = np.array(t.column("face").to_pylist(), bool)
        steps = t.column("step").to_pylist() if "step" in t.column_names else [""] * len(frames)
        att = t.column("step_attempt").to_pylist() if "step_attempt" in t.column_names else [None] * len(frames)
        cols["labels"] = [f"{s}#{a}" if s else "" for s, a in zip(steps, att)]
        return frames, cols
    rows, lms = [], []
    scale = IrisScale()
    with create_runner("mediapipe") as runner:
        for i, rgb in enumerate(frames):
            res = runner.infer(rgb, i * 33 + 1)
            rows.append(compute_measures(res, scale, rgb))
            lms.append(res.landmarks_px if res.face and res.faces == 1 else None)
            if res.face:
                rows[-1].update(zip(BLENDSHAPE_NAMES, res.blendshapes.tolist()))
    cols = {k: np.array([r.get(k, np.nan) for r in rows], float) for k in set().union(*rows) if not isinstance(rows[0].get(k, 0.0), str)}
    cols["landmarks"] = lms
    cols["face"] = np.array([x is not None for x in lms], bool)
    cols["labels"] = [""] * len(frames)
    return frames, cols


def items_from_folder(folder: Path, labels: dict[str, SubjectLabel]) -> list[VideoItem]:
    """Videos under ``folder``: the subject is the first sub-folder's name, or for a video directly in
    the folder its file name up to the first underscore."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"video folder {folder} does not exist")
    items, unknown = [], set()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        rel = path.relative_to(folder)
        subject = rel.parts[0] if len(rel.parts) > 1 else path.stem.split("_")[0]
        if subject not in labels:
            unknown.add(subject)
        items.append(VideoItem(subject, str(rel), path))
    if unknown:
        raise LabelsError(f"videos of subjects not in the labels: {', '.join(sorted(unknown))}")
    return items


def items_from_store(store, labels: dict[str, SubjectLabel]) -> tuple[list[VideoItem], int]:
    """Complete logged sessions of labelled people that kept their video; and how many were passed over."""
    items, passed = [], 0
    for row in store.list_sessions("complete"):
        if row.person not in labels:
            continue
        if not row.video_path or not Path(row.video_path).is_file():
            passed += 1
            continue
        items.append(VideoItem(row.person, row.id, Path(row.video_path), store.read_series(row.id)))
    return items, passed


def _check_subjects(items: list[VideoItem], labels: dict[str, SubjectLabel]) -> None:
    missing = sorted(set(labels) - {i.subject for i in items})
    if missing:
        raise LabelsError(f"subjects in the labels without any usable video: {', '.join(missing)}")


def build_dataset(items: list[VideoItem], labels: dict[str, SubjectLabel], out: Path, frames: int = 64,
                  size: int = 112, trim: int = TRIM_FRAMES, sources: list[str] | None = None, synthetic: bool = False,
                  log=None) -> dict:
    """Cut, crop and write every clip; the folder appears only when whole. Returns dataset.json."""
    out = Path(out)
    if out.exists():
        raise ModelError(f"{out} already exists; choose a new folder for the dataset")
    if not items:
        raise ModelError("no videos to build a dataset from")
    _check_subjects(items, labels)
    eface_keys = sorted({k for lab in labels.values() for k in lab.eface})
    index, feats = [], []
    with new_folder(out) as tmp:
        (tmp / "clips").mkdir()
        for k, item in enumerate(items):
            video_frames, cols = _analysed(item)
            need_step = any(cols["labels"])
            for start, end, step in cut_clips(cols["face"], cols["labels"], frames, trim, need_step):
                crops = np.stack([align_crop(video_frames[i], cols["landmarks"][i], size) for i in range(start, end)])
                name = f"clips/{len(index):06d}.npy"
                np.save(tmp / name, crops)
                lab = labels[item.subject]
                index.append({"clip": name, "subject": item.subject, "session": item.session, "step": step,
                              "first_frame": start, "last_frame": end - 1, "diagnosis": lab.diagnosis,
                              "qmg": "" if lab.qmg is None else lab.qmg,
                              **{f"eface_{e}": lab.eface.get(e, "") for e in eface_keys}})
                feats.append(clip_features({c: v[start:end] for c, v in cols.items()
                                            if isinstance(v, np.ndarray) and v.dtype == float}))
            if log:
                log(f"{k + 1}/{len(items)} {item.session}: {len(index)} clips so far")
        if not index:
            raise ModelError(f"no {frames}-frame clip with a face could be cut from {len(items)} videos")
        per_subject = {}
        for row in index:
            per_subject[row["subject"]] = per_subject.get(row["subject"], 0) + 1
        without = sorted(set(labels) - set(per_subject))
        if without:
            raise LabelsError(f"subjects with no {frames}-frame clip with a face: {', '.join(without)}")
        write_csv(tmp / "index.csv", index)
        names = feature_names()
        write_csv(tmp / "features.csv", [{"clip": r["clip"], **dict(zip(names, f))} for r, f in zip(index, feats)])
        meta = {"format": 1, "frames": frames, "size": size, "trim": trim, "clips": len(index),
                "subjects": len(per_subject), "clips_per_subject": per_subject, "sources": sources or [],
                "videos": len(items), "features": names, "eface": eface_keys,
                "synthetic": synthetic, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "facemonitor_version": __version__}
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2))
    return meta


@contextmanager
def new_folder(out: Path) -> Iterator[Path]:
    """A folder written under a temporary name beside ``out`` and renamed to ``out`` only when the block
    ends normally; on any failure it is removed, so ``out`` is either whole or absent."""
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, out)


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@dataclass
class Dataset:
    """A built dataset, read back: the clip index, features and metadata."""

    root: Path
    meta: dict
    index: list[dict]
    features: np.ndarray  # (clips, features), NaN where unmeasured

    @classmethod
    def open(cls, root: Path) -> "Dataset":
        root = Path(root)
        try:
            meta = json.loads((root / "dataset.json").read_text())
            with open(root / "index.csv", newline="") as f:
                index = list(csv.DictReader(f))
            with open(root / "features.csv", newline="") as f:
                rows = list(csv.DictReader(f))
            feats = np.array([[float(r[n]) if r[n] not in ("", "nan") else np.nan for n in meta["features"]]
                              for r in rows], float)
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"{root} is not a readable facemonitor dataset ({type(e).__name__}: {e})") from None
        if len(index) != len(rows) or not index:
            raise ModelError(f"{root}: index.csv and features.csv do not match")
        return cls(root, meta, index, feats)

    @property
    def frames(self) -> int:
        return int(self.meta["frames"])

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    def clip(self, i: int) -> np.ndarray:
        return np.load(self.root / self.index[i]["clip"], mmap_mode="r")

    def labels(self) -> dict[str, SubjectLabel]:
        out = {}
        for r in self.index:
            if r["subject"] not in out:
                qmg = float(r["qmg"]) if r.get("qmg") not in (None, "") else None
                eface = {k[6:]: float(v) for k, v in r.items() if k.startswith("eface_") and v not in ("", None)}
                out[r["subject"]] = SubjectLabel(r["subject"], r["diagnosis"], qmg, eface)
        return out

    def task_rows(self, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clip indices, labels, subjects) of the clips that take part in ``task``."""
        labels = self.labels()
        idx, y, groups = [], [], []
        for i, r in enumerate(self.index):
            lab = labels[r["subject"]].label(task)
            if lab is not None:
                idx.append(i)
                y.append(lab)
                groups.append(r["subject"])
        return np.array(idx, int), np.array(y, int), np.array(groups, object)
