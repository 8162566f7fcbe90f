"""Evaluating a trained model on a dataset (external validation): a checkpoint through PyTorch or an
exported ONNX model through ONNX Runtime, patient-level metrics and the ROC plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .card import ModelError
from .dataset import Dataset
from .metrics import evaluate, roc_plot


def _onnx_probabilities(path: Path, ds: Dataset, rows: np.ndarray, batch: int = 4) -> tuple[str, np.ndarray]:
    from engines.clip import ClipModelError, OrtClipRunner

    try:
        runner = OrtClipRunner(path, "cpu", threads=2).activate()
    except ClipModelError as e:
        raise ModelError(str(e)) from None
    with runner:
        if not runner.info.trained:
            raise ModelError(f"{path} holds untrained weights; there is nothing to evaluate")
        _same_input(path, runner.info.frames, runner.info.size, ds)
        p = [runner.infer(np.stack([ds.clip(j) for j in rows[i:i + batch]])) for i in range(0, len(rows), batch)]
    return runner.info.task, np.concatenate(p)


def _same_input(path: Path, frames: int, size: int, ds: Dataset) -> None:
    if (frames, size) != (ds.frames, ds.size):
        raise ModelError(f"{path} takes {frames} frames of {size}×{size}; the dataset {ds.root} has "
                         f"{ds.frames} frames of {ds.size}×{ds.size}")


def evaluate_model(model: Path, dataset: Path, roc: Path | None = None) -> dict:
    model, ds = Path(model), Dataset.open(dataset)
    if model.suffix == ".onnx":
        from engines.clip import ClipModelError, OrtClipRunner

        try:
            with OrtClipRunner(model, "cpu", 1) as r:
                task = r.info.task
        except ClipModelError as e:
            raise ModelError(str(e)) from None
        rows, y, groups = ds.task_rows(task)
        if not len(rows):
            raise ModelError(f"the dataset has no subjects for the {task} task")
        task, p = _onnx_probabilities(model, ds, rows)
    else:
        from .checkpoint import load_checkpoint
        from .train import predict

        ck = load_checkpoint(model)
        _same_input(model, ck.frames, ck.size, ds)
        task = ck.task
        rows, y, groups = ds.task_rows(task)
        if not len(rows):
            raise ModelError(f"the dataset has no subjects for the {task} task")
        p = predict(ck.model(), ds, rows)
    metrics = evaluate(groups, y, p)
    out = {"model": str(model), "dataset": str(ds.root), "task": task, "metrics": metrics,
           "clip_probabilities": [round(float(v), 5) for v in p]}
    if roc is not None:
        subs = metrics["subjects"].values()
        out["roc_plot"] = str(roc_plot({model.name: (np.array([s["label"] for s in subs]),
                                                     np.array([s["score"] for s in subs]), metrics["auc"])},
                                       roc, f"{task}: patient level"))
    return out
