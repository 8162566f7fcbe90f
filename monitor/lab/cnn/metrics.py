"""Patient-level evaluation: majority vote over a subject's clips, ROC AUC with a bootstrap 95% CI,
sensitivity, specificity, accuracy, and the ROC plot. numpy only (matplotlib for the plot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.util import atomic_path

N_BOOT = 2000


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann–Whitney, ties count half); None with one class only."""
    y, score = np.asarray(y, int), np.asarray(score, float)
    pos, neg = score[y == 1], score[y == 0]
    if not len(pos) or not len(neg):
        return None
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / (len(pos) * len(neg)))


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) at every threshold, from (0, 0) to (1, 1)."""
    y, score = np.asarray(y, int), np.asarray(score, float)
    thresholds = np.r_[np.inf, np.unique(score)[::-1]]
    tpr = np.array([(score[y == 1] >= t).mean() for t in thresholds])
    fpr = np.array([(score[y == 0] >= t).mean() for t in thresholds])
    return fpr, tpr


def auc_ci(y: np.ndarray, score: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float] | None:
    """95% percentile bootstrap CI, resampling subjects within each class (so both classes stay present)."""
    y, score = np.asarray(y, int), np.asarray(score, float)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) < 2 or len(neg) < 2:
        return None
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n_boot):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        aucs.append(roc_auc(y[idx], score[idx]))
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def patient_votes(subjects, y, p, threshold: float = 0.5) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """Per subject: (subjects, label, score = mean clip probability, decision = majority of clip
    decisions, a tie going to the mean probability)."""
    subjects = np.asarray(subjects, object)
    names = list(dict.fromkeys(subjects.tolist()))
    labels, scores, decisions = [], [], []
    for s in names:
        m = subjects == s
        ps = np.asarray(p, float)[m]
        votes = (ps >= threshold).sum()
        labels.append(int(np.asarray(y)[m][0]))
        scores.append(float(ps.mean()))
        decisions.append(int(votes > len(ps) - votes) if votes * 2 != len(ps) else int(ps.mean() >= threshold))
    return names, np.array(labels), np.array(scores), np.array(decisions)


def binary_metrics(y: np.ndarray, score: np.ndarray, decision: np.ndarray) -> dict:
    y, decision = np.asarray(y, int), np.asarray(decision, int)
    tp = int(((decision == 1) & (y == 1)).sum())
    tn = int(((decision == 0) & (y == 0)).sum())
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    auc = roc_auc(y, score)
    ci = auc_ci(y, score)
    return {"n": len(y), "positives": pos, "negatives": neg,
            "auc": None if auc is None else round(auc, 4),
            "auc_ci95": None if ci is None else [round(ci[0], 4), round(ci[1], 4)],
            "sensitivity": round(tp / pos, 4) if pos else None,
            "specificity": round(tn / neg, 4) if neg else None,
            "accuracy": round((tp + tn) / len(y), 4) if len(y) else None}


def evaluate(subjects, y, p, threshold: float = 0.5) -> dict:
    """Patient-level metrics (the headline) and clip-level AUC, from out-of-fold clip probabilities."""
    names, ys, scores, decisions = patient_votes(subjects, y, p, threshold)
    out = binary_metrics(ys, scores, decisions)
    out["level"] = "patient"
    out["threshold"] = threshold
    clip_auc = roc_auc(np.asarray(y), np.asarray(p))
    out["clip_auc"] = None if clip_auc is None else round(clip_auc, 4)
    out["clips"] = len(y)
    out["subjects"] = {n: {"label": int(a), "score": round(float(b), 4), "decision": int(c)}
                       for n, a, b, c in zip(names, ys, scores, decisions)}
    return out


def subject_curve(metrics: dict) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(labels, scores, AUC) of the subjects in an ``evaluate`` result, for ``roc_plot``."""
    subs = metrics["subjects"].values()
    return np.array([s["label"] for s in subs]), np.array([s["score"] for s in subs]), metrics["auc"]


def roc_plot(curves: dict[str, tuple[np.ndarray, np.ndarray, float | None]], path: Path, title: str) -> Path:
    """One ROC panel with a line per model: {label: (y, score, auc)}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    for label, (y, score, auc) in curves.items():
        fpr, tpr = roc_curve(y, score)
        ax.step(fpr, tpr, where="post", lw=2, label=f"{label} (AUC {auc:.2f})" if auc is not None else label)
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".tmp.png") as tmp:  # savefig picks the format from the extension
        fig.savefig(tmp)
    plt.close(fig)
    return path
