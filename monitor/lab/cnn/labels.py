"""The labels CSV of a dataset: one row per subject.

Columns: ``subject`` (pseudonymous id), ``diagnosis`` (``MG`` or ``control``), ``qmg`` (Quantitative
Myasthenia Gravis score 0–39; needed for MG subjects in the severity task), and optionally eFace
sub-scores as ``eface_<name>`` (0–100) for the ε-SVR baselines. Pure parsing: every problem is one
error naming the row and field.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from monitor.cnn.card import ModelError

DIAGNOSES = {"mg": "MG", "control": "control"}
QMG_MAX = 39
SEVERE_QMG = 9  # the paper's split: mild QMG 0–9, moderate–severe QMG > 9


class LabelsError(ModelError):
    """A labels CSV that cannot be used as it is."""


@dataclass(frozen=True)
class SubjectLabel:
    subject: str
    diagnosis: str
    qmg: float | None = None
    eface: dict = field(default_factory=dict)

    def label(self, task: str) -> int | None:
        """0/1 for ``task``, or None when this subject does not take part in it."""
        if task == "diagnosis":
            return int(self.diagnosis == "MG")
        if self.diagnosis != "MG" or self.qmg is None:
            return None
        return int(self.qmg > SEVERE_QMG)


def _number(text: str, what: str, lo: float, hi: float) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        raise LabelsError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise LabelsError(f"{what}: {v:g} is outside {lo:g}–{hi:g}")
    return v


def read_labels(path: Path) -> dict[str, SubjectLabel]:
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [c.strip().lower() for c in (reader.fieldnames or [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise LabelsError(f"cannot read labels {path}: {e}") from None
    for need in ("subject", "diagnosis"):
        if need not in fields:
            raise LabelsError(f"labels {path} has no {need!r} column (columns: subject, diagnosis, qmg, eface_*)")
    out: dict[str, SubjectLabel] = {}
    for n, raw in enumerate(rows, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        where = f"labels {path.name} line {n}"
        subject = row.get("subject", "")
        if not subject:
            raise LabelsError(f"{where}: the subject id is missing")
        if subject in out:
            raise LabelsError(f"{where}: subject {subject!r} appears twice")
        diagnosis = DIAGNOSES.get(row.get("diagnosis", "").lower())
        if diagnosis is None:
            raise LabelsError(f"{where}: diagnosis {row.get('diagnosis')!r} is not MG or control")
        qmg = _number(row.get("qmg", ""), f"{where} qmg", 0, QMG_MAX)
        eface = {k[6:]: _number(v, f"{where} {k}", 0, 100) for k, v in row.items() if k.startswith("eface_")}
        out[subject] = SubjectLabel(subject, diagnosis, qmg, {k: v for k, v in eface.items() if v is not None})
    if not out:
        raise LabelsError(f"labels {path} has no subjects")
    return out
