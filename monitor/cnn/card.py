"""Model cards: what a checkpoint was trained on, how it was validated, and when.

A card is JSON beside its model (``model.pt`` → ``model.pt.card.json``, ``model.onnx`` →
``model.onnx.card.json``) with a Markdown rendering beside it for people. The card names the
checkpoint's SHA-256, so a card copied next to another model is refused. The app and the engine show a
model's output only together with its card's validation figures; a model without a card (for example an
untrained export for benchmarks) is never shown to a user.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engines.util import atomic_write
from monitor.errors import FacemonitorError

CARD_FORMAT = 1
CLASS_NAMES = {"diagnosis": ("control", "MG"), "severity": ("QMG 0–9", "QMG > 9")}


class ModelError(FacemonitorError):
    """A checkpoint, ONNX file or model card that is missing, corrupt, or does not fit what was asked."""


def card_path(model_path: Path) -> Path:
    return Path(f"{model_path}.card.json")


@dataclass
class ModelCard:
    arch: str
    frames: int
    size: int
    task: str
    checkpoint_sha256: str
    created: str
    data: dict = field(default_factory=dict)  # dataset, subjects and clips per class, sources, synthetic
    training: dict = field(default_factory=dict)  # optimiser settings, epochs, seed
    folds: dict = field(default_factory=dict)  # k, grouping, subject → fold
    validation: dict = field(default_factory=dict)  # patient-level metrics of the cross-validation
    facemonitor_version: str = ""
    format: int = CARD_FORMAT

    @property
    def classes(self) -> tuple[str, str]:
        return CLASS_NAMES[self.task]

    @property
    def synthetic(self) -> bool:
        return bool(self.data.get("synthetic"))

    def summary_line(self) -> str:
        v = self.validation
        if not v or v.get("auc") is None:
            return f"{self.arch} {self.task} model, no validation figures"
        lo, hi = v.get("auc_ci95") or (None, None)
        ci = f" (95% CI {lo:.2f}–{hi:.2f})" if lo is not None else ""
        data = "synthetic data" if self.synthetic else f"{self.data.get('subjects', '?')} subjects"
        return (f"{self.arch} {self.task} model, {v.get('k', '?')}-fold cross-validated on {data}: "
                f"patient-level AUC {v['auc']:.2f}{ci}, sensitivity {v.get('sensitivity', float('nan')):.2f}, "
                f"specificity {v.get('specificity', float('nan')):.2f}")

    def as_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        v, d, t, f = self.validation, self.data, self.training, self.folds
        lines = [f"# Model card: {self.arch} ({self.task})", "",
                 "Research model — not a diagnostic device." + (" Trained on SYNTHETIC clips: it shows the "
                                                                   "pipeline learns, nothing about patients."
                                                                   if self.synthetic else ""), "",
                 f"- created: {self.created} (facemonitor {self.facemonitor_version})",
                 f"- input: {self.frames} frames × {self.size}×{self.size} aligned face crops",
                 f"- classes: 0 = {self.classes[0]}, 1 = {self.classes[1]}",
                 f"- checkpoint SHA-256: `{self.checkpoint_sha256}`", "", "## Data", ""]
        lines += [f"- {k}: {json.dumps(val)}" for k, val in d.items()]
        lines += ["", "## Training", ""] + [f"- {k}: {json.dumps(val)}" for k, val in t.items()]
        lines += ["", "## Validation", "", f"- folds: {f.get('k')} grouped by {f.get('grouped_by', 'subject')}"]
        lines += [f"- {k}: {json.dumps(val)}" for k, val in v.items() if k != "per_fold"]
        for i, fold in enumerate(v.get("per_fold", [])):
            lines.append(f"- fold {i}: {json.dumps(fold)}")
        return "\n".join(lines) + "\n"


def write_card(card: ModelCard, model_path: Path) -> Path:
    """Write ``<model>.card.json`` and ``<model>.card.md`` atomically."""
    dest = card_path(model_path)
    for path, text in ((dest, json.dumps(card.as_dict(), indent=2)), (dest.with_suffix(".md"), card.markdown())):
        atomic_write(path, text)
    return dest


def read_card(model_path: Path, expect_sha256: str | None = None) -> ModelCard:
    """The card beside ``model_path``; ModelError when it is missing, unreadable, or for another model."""
    path = card_path(model_path)
    if not path.is_file():
        raise ModelError(f"{model_path} has no model card ({path.name}); a model is shown only with its card")
    try:
        raw = json.loads(path.read_text())
        card = ModelCard(**{k: raw[k] for k in ModelCard.__dataclass_fields__ if k in raw})
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ModelError(f"model card {path} is unreadable: {e}") from None
    if card.format != CARD_FORMAT:
        raise ModelError(f"model card {path} has format {card.format}; this facemonitor reads {CARD_FORMAT}")
    if card.task not in CLASS_NAMES:
        raise ModelError(f"model card {path} names an unknown task {card.task!r}")
    if expect_sha256 is not None and card.checkpoint_sha256 != expect_sha256:
        raise ModelError(f"model card {path} belongs to another checkpoint "
                         f"({card.checkpoint_sha256[:12]}…, the model says {expect_sha256[:12]}…)")
    return card
