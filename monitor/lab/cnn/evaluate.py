"""Evaluating a trained model on a dataset (external validation): a checkpoint through PyTorch or an
exported ONNX model through ONNX Runtime, patient-level metrics and the ROC plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.clip import ClipModelError, OrtClipRunner
from monitor.cnn.card import ModelError
from monitor.lab.cnn.dataset import Dataset
from monitor.lab.cnn.metrics import evaluate, roc_plot, subject_curve


def _task_rows(ds: Dataset, task: str):
    rows, y, groups = ds.task_rows(task)
    if not len(rows):
        raise ModelError(f"the dataset has no subjects for the {task} task")
    return rows, y, groups


def _onnx_probabilities(path: Path, ds: Dataset, batch: int = 4):
    """(task, labels, subjects, probabilities) from an exported model, loaded once."""

    try:
        runner = OrtClipRunner(path, "cpu", threads=2).activate()
    except ClipModelError as e:
        raise ModelError(str(e)) from None
    with runner:
        info = runner.info
        if not info.trained:
            raise ModelError(f"{path} holds untrained weights; there is nothing to evaluate")
        _same_input(path, info.frames, info.size, ds)
        rows, y, groups = _task_rows(ds, info.task)
        p = [runner.infer(np.stack([ds.clip(j) for j in rows[i:i + batch]])) for i in range(0, len(rows), batch)]
    return info.task, y, groups, np.concatenate(p)


def _checkpoint_probabilities(path: Path, ds: Dataset):
    from monitor.lab.cnn.checkpoint import load_checkpoint  # lazy: torch loads only to evaluate a checkpoint
    from monitor.lab.cnn.train import predict  # lazy: torch loads only to evaluate a checkpoint

    ck = load_checkpoint(path)
    _same_input(path, ck.frames, ck.size, ds)
    rows, y, groups = _task_rows(ds, ck.task)
    return ck.task, y, groups, predict(ck.model(), ds, rows)


def _same_input(path: Path, frames: int, size: int, ds: Dataset) -> None:
    if (frames, size) != (ds.frames, ds.size):
        raise ModelError(f"{path} takes {frames} frames of {size}×{size}; the dataset {ds.root} has "
                         f"{ds.frames} frames of {ds.size}×{ds.size}")


def evaluate_model(model: Path, dataset: Path, roc: Path | None = None) -> dict:
    model, ds = Path(model), Dataset.open(dataset)
    probabilities = _onnx_probabilities if model.suffix == ".onnx" else _checkpoint_probabilities
    task, y, groups, p = probabilities(model, ds)
    metrics = evaluate(groups, y, p)
    out = {"model": str(model), "dataset": str(ds.root), "task": task, "metrics": metrics,
           "clip_probabilities": [round(float(v), 5) for v in p]}
    if roc is not None:
        out["roc_plot"] = str(roc_plot({model.name: subject_curve(metrics)}, roc, f"{task}: patient level"))
    return out
