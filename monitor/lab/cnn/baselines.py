"""Interpretable baselines on the same datasets (scikit-learn, the ``train`` extra): classifiers on the
clips' landmark features (random forest with leave-one-subject-out CV, SVM, MLP), decided per subject by
majority vote like the 3D-CNN, and ε-SVR for eFace sub-scores when the labels carry them. The deep model
is always reported beside these."""

from __future__ import annotations

import numpy as np

from monitor.cnn.card import ModelError
from monitor.lab.cnn.dataset import Dataset
from monitor.lab.cnn.metrics import evaluate

CLASSIFIERS = ("random_forest", "svm", "mlp")


def _classifier(name: str, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if name == "random_forest":
        model = RandomForestClassifier(n_estimators=300, min_samples_leaf=2, random_state=seed, n_jobs=1)
    elif name == "svm":
        model = make_pipeline(StandardScaler(), SVC(C=1.0, kernel="rbf", probability=True, random_state=seed))
    elif name == "mlp":
        model = make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=2000, random_state=seed))
    else:
        raise ModelError(f"unknown baseline {name!r}; known: {', '.join(CLASSIFIERS)}")
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), model)


def cross_validated_baseline(ds: Dataset, task: str, assignment: dict | None, name: str, seed: int = 0) -> dict:
    """Out-of-fold probabilities of one classifier. ``assignment`` (subject → fold) reuses the CNN's
    folds; None means leave one subject out."""
    rows, y, groups = ds.task_rows(task)
    X = ds.features[rows]
    fold_of = np.array([assignment[g] for g in groups]) if assignment else \
        np.array([sorted(set(groups)).index(g) for g in groups])
    p = np.full(len(rows), np.nan)
    for f in np.unique(fold_of):
        tr, va = fold_of != f, fold_of == f
        if len(set(y[tr])) < 2:
            raise ModelError(f"a training fold of {task} has one class only; add subjects")
        model = _classifier(name, seed).fit(X[tr], y[tr])
        p[va] = model.predict_proba(X[va])[:, 1]
    return {"name": name, "cv": "folds of the 3D-CNN" if assignment else "leave one subject out",
            "metrics": evaluate(groups, y, p)}


def eface_regression(ds: Dataset, seed: int = 0) -> dict:
    """ε-SVR per eFace sub-score, leave one subject out: mean absolute error and Pearson r per score."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    labels = ds.labels()
    out = {}
    subjects = np.array([r["subject"] for r in ds.index], object)
    for key in ds.meta.get("eface", []):
        have = np.array([key in labels[s].eface for s in subjects])
        if len(set(subjects[have])) < 3:
            continue
        y = np.array([labels[s].eface.get(key, np.nan) for s in subjects], float)
        pred = np.full(len(y), np.nan)
        for s in sorted(set(subjects[have])):
            tr, va = have & (subjects != s), have & (subjects == s)
            model = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                                  SVR(kernel="rbf", C=10.0, epsilon=2.0))
            pred[va] = model.fit(ds.features[tr], y[tr]).predict(ds.features[va])
        per_subject = {s: (float(np.mean(y[subjects == s])), float(np.mean(pred[subjects == s])))
                       for s in sorted(set(subjects[have]))}
        truth, guess = np.array(list(per_subject.values())).T
        r = float(np.corrcoef(truth, guess)[0, 1]) if np.std(truth) > 0 and np.std(guess) > 0 else None
        out[key] = {"subjects": len(per_subject), "mae": round(float(np.mean(np.abs(truth - guess))), 2),
                    "pearson_r": None if r is None else round(r, 3)}
    return out


def run_baselines(ds: Dataset, task: str, seed: int = 0) -> dict:
    results = {name: cross_validated_baseline(ds, task, None, name, seed)["metrics"] for name in CLASSIFIERS}
    return {"task": task, "cv": "leave one subject out",
            "classifiers": {k: {m: v[m] for m in ("auc", "auc_ci95", "sensitivity", "specificity", "accuracy", "n")}
                            for k, v in results.items()},
            "eface_svr": eface_regression(ds, seed)}
