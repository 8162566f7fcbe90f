"""What a cohort is made of: the recordings of a folder, or of a manifest CSV.

A folder: every video or photo under it; the subject is the first sub-folder's name, or for a file
directly in the folder its name up to the first underscore (the CNN dataset's convention). A
manifest: CSV with a ``path`` column (relative to the manifest's folder, or absolute) and optional
``subject``, ``steps_file`` and ``label`` columns; any other column (``diagnosis``, ``qmg``, …, the
CNN labels' columns) is kept as a label of the recording. Problems are one UsageError naming the
line.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from engines.util import file_sha256
from monitor.capture.still import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from monitor.errors import StoreError, UsageError
from monitor.store.people import check_person

RECORDING_SUFFIXES = VIDEO_SUFFIXES + IMAGE_SUFFIXES


@dataclass(frozen=True)
class Recording:
    path: Path  # where the file is
    key: str  # its name in the cohort: the path relative to the folder or manifest
    subject: str | None = None
    steps_file: Path | None = None
    labels: dict = field(default_factory=dict)  # label, diagnosis, qmg, … from the manifest

    def content_sha256(self) -> str:
        """The recording's content (and its steps file's), so an edited file is analysed again."""
        digest = file_sha256(self.path)
        if self.steps_file is not None:
            digest = hashlib.sha256((digest + file_sha256(self.steps_file)).encode()).hexdigest()
        return digest


def read_source(source: Path) -> list[Recording]:
    """The recordings of a folder or a manifest CSV, in a stable order."""
    source = Path(source)
    if source.is_dir():
        return _from_folder(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return _from_manifest(source)
    if not source.exists():
        raise UsageError(f"{source}: no such folder or manifest")
    raise UsageError(f"{source}: a cohort is a folder of recordings or a manifest .csv")


def _from_folder(folder: Path) -> list[Recording]:
    out = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in RECORDING_SUFFIXES or path.name.startswith("."):
            continue
        rel = path.relative_to(folder)
        subject = rel.parts[0] if len(rel.parts) > 1 else path.stem.split("_")[0]
        out.append(Recording(path, str(rel), subject))
    if not out:
        raise UsageError(f"{folder}: no videos or photos in it ({', '.join(RECORDING_SUFFIXES)})")
    return out


def _from_manifest(manifest: Path) -> list[Recording]:
    base = manifest.parent
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"cannot read manifest {manifest}: {e}") from None
    if not rows or "path" not in rows[0]:
        raise UsageError(f"{manifest}: a manifest needs a header with a 'path' column (path,subject,steps_file,label,…)")
    out, seen = [], set()
    for n, row in enumerate(rows, start=2):
        given = (row.get("path") or "").strip()
        if not given:
            raise UsageError(f"{manifest} line {n}: empty path")
        if given in seen:
            raise UsageError(f"{manifest} line {n}: {given} is listed twice")
        seen.add(given)
        path = Path(given) if Path(given).is_absolute() else base / given
        steps = (row.get("steps_file") or "").strip()
        steps_path = (Path(steps) if Path(steps).is_absolute() else base / steps) if steps else None
        if steps_path is not None and not steps_path.is_file():
            raise UsageError(f"{manifest} line {n}: steps file {steps} does not exist")
        labels = {k: v.strip() for k, v in row.items()
                  if k not in ("path", "subject", "steps_file") and k is not None and v is not None and v.strip()}
        subject = (row.get("subject") or "").strip() or None
        try:
            if subject is not None:
                check_person(subject)
        except StoreError as e:
            raise UsageError(f"{manifest} line {n}: subject: {e}") from None
        out.append(Recording(path, given, subject, steps_path, labels))
    return out


def settings_hash(settings: dict) -> str:
    """The settings a session's numbers depend on, as one hash (a change re-does the cohort)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
