"""Training and cross-validation of the 3D-CNN (PyTorch and scikit-learn: the ``train`` extra).

SGD (lr 0.01, weight decay 1e-4, momentum 0.9 by default; linear warm-up over the first tenth of the
steps, then cosine decay; gradient norm clipped at 5) on cross-entropy, with gradient accumulation;
k-fold cross-validation grouped by subject and stratified by class (3 folds for diagnosis, 4 for
severity by default), so no subject is ever in both a training and a validation fold. Every fold's
held-out clips get probabilities; subjects are decided by majority vote over their clips; the pooled
out-of-fold figures go into the model card with the folds, beside an interpretable baseline (random
forest on landmark features) run on the same folds. The final checkpoint is then trained on all
subjects with the same settings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engines.clip import prepare_clips
from engines.util import file_sha256
from monitor import __version__
from monitor.cnn.card import ModelCard, ModelError, write_card
from monitor.lab.cnn.baselines import cross_validated_baseline
from monitor.lab.cnn.checkpoint import _torch, check_spec, save_checkpoint
from monitor.lab.cnn.dataset import Dataset
from monitor.lab.cnn.metrics import evaluate, roc_plot, subject_curve

DEFAULT_FOLDS = {"diagnosis": 3, "severity": 4}
GRAD_CLIP = 5.0  # gradient norm limit: small clinical datasets make single batches noisy


@dataclass
class TrainConfig:
    arch: str = "r3d18"
    task: str = "diagnosis"
    folds: int | None = None  # default per task
    epochs: int = 30
    batch: int = 8
    accumulate: int = 1  # optimiser step every this many batches
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int | None = None
    inflate: str | None = None  # a torchvision-style 2D ResNet state dict to start from

    @property
    def k(self) -> int:
        return self.folds or DEFAULT_FOLDS[self.task]


def check_folds(y: np.ndarray, groups: np.ndarray, k: int, task: str) -> None:
    if k < 2:
        raise ModelError(f"cross-validation needs at least 2 folds, got {k}")
    for cls in (0, 1):
        n = len(set(groups[y == cls]))
        if n < k:
            have = {c: len(set(groups[y == c])) for c in (0, 1)}
            raise ModelError(f"too few subjects for {k}-fold cross-validation of {task}: "
                             f"{have[0]} in class 0 and {have[1]} in class 1; each class needs at least {k}")


def make_folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y, groups))


class _Clips:
    """Clip batches as float tensors, with light augmentation for training (brightness, white balance,
    a horizontal flip: the labels do not depend on which side is weak)."""

    def __init__(self, ds: Dataset, rows: np.ndarray, y: np.ndarray) -> None:
        self.ds, self.rows, self.y = ds, rows, y

    def batches(self, batch: int, rng: np.random.Generator | None):
        torch = _torch()
        order = rng.permutation(len(self.rows)) if rng is not None else np.arange(len(self.rows))
        for i in range(0, len(order), batch):
            sel = order[i:i + batch]
            clips = np.stack([self.ds.clip(self.rows[j]) for j in sel])
            if rng is not None:
                gain = rng.uniform(0.8, 1.2, (len(sel), 1, 1, 1, 1)) * rng.uniform(0.85, 1.15, (len(sel), 1, 1, 1, 3))
                shift = rng.uniform(-20, 20, (len(sel), 1, 1, 1, 1))
                clips = np.clip(clips * gain + shift, 0, 255).astype(np.uint8)
                flip = rng.random(len(sel)) < 0.5
                clips[flip] = clips[flip][:, :, :, ::-1]
            yield torch.from_numpy(prepare_clips(clips)), torch.from_numpy(self.y[sel]).long(), sel


def _fit(ds: Dataset, rows: np.ndarray, y: np.ndarray, cfg: TrainConfig, log, tag: str):
    torch = _torch()
    from monitor.lab.cnn.model import build_model, inflate_2d  # lazy: torch

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch)
    if cfg.inflate:
        try:
            state = torch.load(cfg.inflate, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ModelError(f"cannot read 2D weights {cfg.inflate}: {type(e).__name__}: {e}") from None
        try:
            inflate_2d(model, state.get("state_dict", state))
        except ValueError as e:
            raise ModelError(f"{cfg.inflate}: {e}") from None
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(cfg.seed)
    data = _Clips(ds, rows, y)
    steps = cfg.epochs * max(1, -(-len(rows) // (cfg.batch * cfg.accumulate)))
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up over the first tenth, then cosine decay
        opt, lambda i: (i + 1) / warm if i < warm else 0.5 * (1 + np.cos(np.pi * (i - warm) / max(1, steps - warm))))
    model.train()
    for epoch in range(cfg.epochs):
        total, n = 0.0, 0
        opt.zero_grad()
        for b, (x, t, _) in enumerate(data.batches(cfg.batch, rng)):
            loss = loss_fn(model(x), t)
            (loss / cfg.accumulate).backward()
            if (b + 1) % cfg.accumulate == 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
                opt.step()
                sched.step()
                opt.zero_grad()
            total += float(loss.detach()) * len(t)
            n += len(t)
        if (b + 1) % cfg.accumulate:  # what is left of the last accumulation
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            opt.step()
            sched.step()
        opt.zero_grad()
        if log and (epoch == cfg.epochs - 1 or epoch % 5 == 0):
            log(f"{tag} epoch {epoch + 1}/{cfg.epochs}: loss {total / max(n, 1):.4f}")
    return model.eval()


def predict(model, ds: Dataset, rows: np.ndarray, batch: int = 8) -> np.ndarray:
    torch = _torch()
    out = []
    with torch.no_grad():
        for x, _, _ in _Clips(ds, rows, np.zeros(len(rows), int)).batches(batch, None):
            out.append(torch.softmax(model(x), 1)[:, 1].numpy())
    return np.concatenate(out)


def cross_validate(ds: Dataset, cfg: TrainConfig, log=None) -> tuple[dict, dict, np.ndarray]:
    """Out-of-fold probabilities and patient-level metrics; (validation, folds, probabilities)."""
    rows, y, groups = ds.task_rows(cfg.task)
    check_folds(y, groups, cfg.k, cfg.task)
    folds = make_folds(y, groups, cfg.k, cfg.seed)
    p = np.full(len(rows), np.nan)
    per_fold, assignment = [], {}
    for f, (tr, va) in enumerate(folds):
        model = _fit(ds, rows[tr], y[tr], cfg, log, f"fold {f + 1}/{cfg.k}")
        p[va] = predict(model, ds, rows[va], cfg.batch)
        m = evaluate(groups[va], y[va], p[va])
        per_fold.append({k: m[k] for k in ("n", "auc", "sensitivity", "specificity", "accuracy", "clip_auc")})
        assignment.update({g: f for g in groups[va]})
        if log:
            log(f"fold {f + 1}/{cfg.k}: patient AUC {m['auc']}, accuracy {m['accuracy']}")
    validation = evaluate(groups, y, p)
    validation["k"] = cfg.k
    validation["per_fold"] = per_fold
    fold_aucs = [f["auc"] for f in per_fold if f["auc"] is not None]
    validation["fold_auc_mean"] = round(float(np.mean(fold_aucs)), 4) if fold_aucs else None
    return validation, {"k": cfg.k, "grouped_by": "subject", "stratified": True, "seed": cfg.seed,
                        "assignment": assignment}, p


def train(dataset: Path, out: Path, cfg: TrainConfig, log=None) -> dict:
    """Cross-validate, train the final model on everything, write checkpoint, card and ROC plot."""
    torch = _torch()
    ds = Dataset.open(dataset)
    check_spec(cfg.arch, ds.frames, ds.size, cfg.task)
    if cfg.epochs < 1 or cfg.batch < 1 or cfg.accumulate < 1 or cfg.lr <= 0:
        raise ModelError("epochs, batch and accumulate must be at least 1, and lr positive")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out)
    validation, folds, p = cross_validate(ds, cfg, log)
    rows, y, groups = ds.task_rows(cfg.task)

    base = cross_validated_baseline(ds, cfg.task, folds["assignment"], "random_forest", seed=cfg.seed)
    validation["baselines"] = {"random_forest": {k: base["metrics"][k] for k in
                                                 ("auc", "auc_ci95", "sensitivity", "specificity", "accuracy", "n")}}
    model = _fit(ds, rows, y, cfg, log, "final model")
    save_checkpoint(model, out, ds.frames, ds.size, cfg.task)

    classes = {c: sorted(set(groups[y == c])) for c in (0, 1)}
    card = ModelCard(
        arch=cfg.arch, frames=ds.frames, size=ds.size, task=cfg.task, checkpoint_sha256=file_sha256(out),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), facemonitor_version=__version__,
        data={"dataset": str(Path(dataset).resolve()), "dataset_created": ds.meta.get("created"),
              "synthetic": bool(ds.meta.get("synthetic")), "subjects": len(set(groups)),
              "subjects_per_class": {str(c): len(v) for c, v in classes.items()}, "clips": len(rows),
              "sources": ds.meta.get("sources", [])},
        training={k: v for k, v in asdict(cfg).items() if k not in ("threads",)},
        folds=folds, validation={k: v for k, v in validation.items() if k != "subjects"})
    card.validation["subjects"] = validation["subjects"]
    write_card(card, out)
    plot = roc_plot({f"{cfg.arch} (3D-CNN)": subject_curve(validation),
                     "random forest (landmarks)": subject_curve(base["metrics"])},
                    out.with_name(out.name + ".roc.png"), f"{cfg.task}: patient level, {cfg.k}-fold CV")
    return {"checkpoint": str(out), "card": str(out) + ".card.json", "roc_plot": str(plot), "validation": validation}
