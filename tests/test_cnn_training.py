"""The training machinery learns: synthetic subjects with a planted progressive one-sided lid lowering
(warped real face video) → dataset → 3-fold training of a real r3d18 → a high patient-level AUC on
held-out subjects → export → ONNX evaluation. Through the real CLI, as a clinic would run it. This shows
the pipeline works; it says nothing about patients (docs/cnn.md)."""

import csv
import importlib.util
import json

import pytest
from helpers import run_cli

# found, not imported: importing torch here would cost every collection (the fast tier's too) seconds
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("sklearn") is None,
    reason="PyTorch or scikit-learn is not installed (pip install 'facemonitor[train]')")

# small enough for CI on 2 cores: 12 subjects × 2 videos × 16 frames, clips of 8 frames at 64 px
FRAMES, SIZE = 8, 64


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("cnn")
    r = run_cli("cnn", "synthetic", "--out", root / "syn", "--subjects", 12, "--videos", 2,
                "--frames-per-video", 16)
    assert r.returncode == 0, r.stderr
    r = run_cli("cnn", "dataset", "--videos", root / "syn" / "videos", "--labels", root / "syn" / "labels.csv",
                "--out", root / "ds", "--frames", FRAMES, "--size", SIZE)
    assert r.returncode == 0, r.stderr
    return root


@pytest.mark.slow
@pytest.mark.timeout(1000)  # the training subprocess alone may take its 900 s on a busy 2-core machine
def test_training_learns_the_planted_signal_and_the_card_says_so(synthetic):
    ds, out = synthetic / "ds", synthetic / "model" / "mg.pt"
    meta = json.loads((ds / "dataset.json").read_text())
    assert meta["synthetic"] and meta["subjects"] == 12 and meta["clips"] == 48
    r = run_cli("cnn", "train", "--dataset", ds, "--out", out, "--epochs", 12, "--batch", 4, "--threads", 2,
                "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    v = result["validation"]
    assert v["k"] == 3 and len(v["per_fold"]) == 3 and v["n"] == 12
    # every fold's held-out subjects are separated; pooling folds (as the card's headline does) mixes
    # three separately trained models' calibrations, so it is lower
    assert v["fold_auc_mean"] >= 0.9, f"mean held-out fold AUC {v['fold_auc_mean']} ({v['per_fold']})"
    assert v["auc"] >= 0.75, f"pooled patient-level AUC on held-out synthetic subjects {v['auc']}"
    assert v["auc_ci95"][0] <= v["auc"] <= v["auc_ci95"][1]
    card = json.loads((out.parent / "mg.pt.card.json").read_text())
    assert card["data"]["synthetic"] is True and card["task"] == "diagnosis" and card["frames"] == FRAMES
    folds = card["folds"]["assignment"]
    assert sorted(folds) == [f"S{i:02d}" for i in range(12)] and set(folds.values()) == {0, 1, 2}
    assert card["validation"]["baselines"]["random_forest"]["auc"] is not None
    assert (out.parent / "mg.pt.roc.png").stat().st_size > 5000

    # export with the card, then evaluate the ONNX model on the same clips through ONNX Runtime
    onnx = synthetic / "model" / "mg.onnx"
    r = run_cli("cnn", "export", "--arch", "r3d18", "--frames", FRAMES, "--size", SIZE, "--checkpoint", out,
                "--out", onnx)
    assert r.returncode == 0 and (synthetic / "model" / "mg.onnx.card.json").is_file(), r.stderr
    r_pt = json.loads(run_cli("cnn", "eval", "--model", out, "--dataset", synthetic / "ds", "--json").stdout)
    r_onnx = run_cli("cnn", "eval", "--model", onnx, "--dataset", synthetic / "ds", "--json",
                     "--roc", synthetic / "roc.png")
    assert r_onnx.returncode == 0, r_onnx.stderr
    r_onnx = json.loads(r_onnx.stdout)
    assert r_onnx["task"] == "diagnosis" and (synthetic / "roc.png").is_file()
    assert r_onnx["clip_probabilities"] == pytest.approx(r_pt["clip_probabilities"], abs=1e-3)

    # a wrong architecture for the checkpoint is refused, nothing written
    r = run_cli("cnn", "export", "--arch", "r3d34", "--frames", FRAMES, "--size", SIZE, "--checkpoint", out,
                "--out", synthetic / "model" / "wrong.onnx")
    assert r.returncode == 2 and "asked for architecture r3d34" in r.stderr
    assert not (synthetic / "model" / "wrong.onnx").exists()


def test_baselines_see_the_planted_lid_in_the_landmark_features(synthetic):
    r = run_cli("cnn", "baselines", "--dataset", synthetic / "ds", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["classifiers"]) == {"random_forest", "svm", "mlp"}
    assert out["classifiers"]["random_forest"]["auc"] >= 0.8


def test_bad_input_is_refused_with_nothing_half_written(synthetic, tmp_path):
    labels = synthetic / "syn" / "labels.csv"
    rows = list(csv.DictReader(open(labels)))
    # a video of a subject the labels do not know
    few = tmp_path / "few.csv"
    with open(few, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[:-1])
    r = run_cli("cnn", "dataset", "--videos", synthetic / "syn" / "videos", "--labels", few, "--out", tmp_path / "ds")
    assert r.returncode == 2 and "videos of subjects not in the labels: S11" in r.stderr
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds.partial*"))
    # a labelled subject without videos
    extra = tmp_path / "extra.csv"
    extra.write_text(labels.read_text() + "S99,control,,,0\n")
    r = run_cli("cnn", "dataset", "--videos", synthetic / "syn" / "videos", "--labels", extra, "--out", tmp_path / "ds")
    assert r.returncode == 2 and "without any usable video: S99" in r.stderr
    # an existing output folder is never overwritten
    r = run_cli("cnn", "dataset", "--videos", synthetic / "syn" / "videos", "--labels", labels, "--out", synthetic / "ds")
    assert r.returncode == 2 and "already exists" in r.stderr
    # too few subjects for the folds
    r = run_cli("cnn", "train", "--dataset", synthetic / "ds", "--out", tmp_path / "m.pt", "--folds", 7)
    assert r.returncode == 2 and "too few subjects for 7-fold cross-validation" in r.stderr
    assert not (tmp_path / "m.pt").exists()
    # severity: synthetic controls have no QMG, MG subjects do; 6 MG subjects cannot fill 4 folds per class
    r = run_cli("cnn", "train", "--dataset", synthetic / "ds", "--out", tmp_path / "m.pt", "--task", "severity")
    assert r.returncode == 2 and "severity" in r.stderr
    # a dataset folder that is not one
    r = run_cli("cnn", "train", "--dataset", tmp_path, "--out", tmp_path / "m.pt")
    assert r.returncode == 2 and "not a readable facemonitor dataset" in r.stderr
