"""A facial-palsy photo set (``analyze --photo-set``): which photo shows which of the eight standard
poses (``monitor.protocol.poses``), from the file names or from a manifest, and the decoded photos.

Sources: a folder (its image files, or its ``poses.json`` / ``poses.csv`` when it has one), image
files, and manifest files. A manifest maps file → pose: a JSON object ``{"IMG_0412.jpg": "smile"}``
(or a list of ``{"file": ..., "pose": ...}``), or CSV lines ``file,pose`` (a header and ``#``
comments allowed); its paths are relative to its own folder. A file that names no pose, a pose given
twice, a missing or unreadable file: each refused with a message that says what to do, before
anything is recorded.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from monitor.capture.still import IMAGE_SUFFIXES, is_image
from monitor.errors import SourceError, UsageError
from monitor.protocol.poses import POSE_NAMES, POSES, Pose, pose_from_name

MANIFEST_NAMES = ("poses.json", "poses.csv")


@dataclass(frozen=True)
class PosePhoto:
    pose: Pose
    path: Path


@dataclass(frozen=True)
class PhotoSet:
    """The photos of one set, in the standard pose order; frame i of the session is photos[i]."""

    photos: tuple[PosePhoto, ...]
    source: str  # what the session's source column says

    @property
    def missing(self) -> tuple[str, ...]:
        """The standard poses the set has no photo of."""
        have = {p.pose.name for p in self.photos}
        return tuple(n for n in POSE_NAMES if n not in have)

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(p.pose.step for p in self.photos)

    def step_at(self, t_s: float) -> str:
        """The step label of the frame at media time t_s (photo i at t_s = i)."""
        i = int(round(t_s))
        return self.photos[i].pose.step if 0 <= i < len(self.photos) else ""

    def as_json(self) -> dict:
        return {"poses": {p.pose.name: {"file": p.path.name, "step": p.pose.step, "t_s": float(i)}
                          for i, p in enumerate(self.photos)},
                "missing": list(self.missing)}


def _known() -> str:
    return ", ".join(POSE_NAMES)


def _manifest_rows(path: Path) -> list[tuple[str, str]]:
    """(file, pose) pairs of a poses.json / poses.csv manifest."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: cannot read the manifest ({e})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
        if isinstance(data, dict):
            rows = list(data.items())
        elif isinstance(data, list) and all(isinstance(d, dict) and {"file", "pose"} <= d.keys() for d in data):
            rows = [(d["file"], d["pose"]) for d in data]
        else:
            raise UsageError(f'{path}: expected {{"file": "pose", ...}} or [{{"file": ..., "pose": ...}}, ...]')
        if not all(isinstance(f, str) and isinstance(p, str) for f, p in rows):
            raise UsageError(f"{path}: file names and poses must be strings")
        return rows
    rows = []
    lines = [ln.split("#", 1)[0] for ln in text.splitlines()]
    for n, parts in enumerate(csv.reader(io.StringIO("\n".join(lines))), 1):
        parts = [p.strip() for p in parts]
        if not any(parts):
            continue
        if len(parts) != 2:
            raise UsageError(f"{path} line {n}: expected file,pose, got {','.join(parts)!r}")
        if n == 1 and [p.lower() for p in parts] == ["file", "pose"]:
            continue
        rows.append((parts[0], parts[1]))
    return rows


def _from_manifest(path: Path) -> list[tuple[Path, Pose]]:
    out, unknown = [], []
    for name, pose_name in _manifest_rows(path):
        pose = pose_from_name(pose_name)
        if pose is None:
            unknown.append(f"{name} → {pose_name}")
            continue
        out.append((path.parent / name, pose))
    if unknown:
        raise UsageError(f"{path}: unknown poses: {'; '.join(unknown)} (poses: {_known()})")
    return out


def _from_names(files: list[Path]) -> list[tuple[Path, Pose]]:
    out, unknown = [], []
    for f in files:
        pose = pose_from_name(f.stem)
        if pose is None:
            unknown.append(f.name)
        else:
            out.append((f, pose))
    if unknown:
        raise UsageError(f"photo set: no pose named by {', '.join(unknown)}; name each photo after its pose "
                         f"(poses: {_known()}; e.g. rest.jpg, 02_smile.png) or map files to poses in "
                         "poses.json or poses.csv")
    return out


def _entries(paths: list[Path]) -> list[tuple[Path, Pose]]:
    entries, by_name = [], []
    for path in paths:
        if not path.exists():
            raise SourceError(f"{path}: no such file or folder")
        if path.is_dir():
            manifests = [path / m for m in MANIFEST_NAMES if (path / m).is_file()]
            if len(manifests) > 1:
                raise UsageError(f"{path}: has both poses.json and poses.csv; keep one")
            if manifests:
                entries += _from_manifest(manifests[0])
            else:
                by_name += sorted(f for f in path.iterdir() if f.is_file() and is_image(f)
                                  and not f.name.startswith("."))
        elif path.suffix.lower() in (".json", ".csv"):
            entries += _from_manifest(path)
        elif is_image(path):
            by_name.append(path)
        else:
            raise UsageError(f"{path}: neither a photo ({', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}) "
                             "nor a poses.json / poses.csv manifest")
    return entries + _from_names(by_name)


def find_photo_set(paths: list[str | Path]) -> PhotoSet:
    """The photo set the paths name, checked (every file exists, names one pose, no pose twice)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise UsageError("--photo-set needs a folder, photos or a manifest")
    entries = _entries(paths)
    if not entries:
        raise UsageError(f"photo set: no photos in {', '.join(map(str, paths))} (image files: "
                         f"{', '.join(IMAGE_SUFFIXES)})")
    seen: dict[str, Path] = {}
    for f, pose in entries:
        if pose.name in seen and seen[pose.name].resolve() != f.resolve():
            raise UsageError(f"photo set: two photos of pose {pose.name}: {seen[pose.name]} and {f}")
        seen[pose.name] = f
    for f in seen.values():
        if not f.is_file():
            raise SourceError(f"{f}: no such photo")
        if not is_image(f):
            raise UsageError(f"{f}: not a photo (image files: {', '.join(IMAGE_SUFFIXES)})")
    photos = tuple(PosePhoto(p, seen[p.name]) for p in POSES if p.name in seen)
    source = str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} more)"
    return PhotoSet(photos, f"photo set {source}")


def read_photos(photo_set: PhotoSet) -> list[np.ndarray]:
    """The set's photos decoded (BGR), in order; SourceError naming a photo that cannot be read."""
    images = []
    for p in photo_set.photos:
        if p.path.stat().st_size == 0:
            raise SourceError(f"{p.path}: file is empty (0 bytes)")
        image = cv2.imread(str(p.path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{p.path}: not a readable image (unknown format, or truncated/corrupt)")
        images.append(image)
    return images
