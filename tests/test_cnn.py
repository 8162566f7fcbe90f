"""The 3D-CNN's pure parts (crops, clip window, votes, labels, metrics, clip cutting, cards) and, with
PyTorch installed (the train extra), the models, checkpoints, ONNX export and parity, and runtime checks."""

import importlib.util
import json

import cv2
import numpy as np
import pytest

from engines import create_runner
from monitor.cnn.card import ModelCard, ModelError, read_card, write_card
from monitor.cnn.crops import EYE_X0, EYE_X1, EYE_Y, align_crop, crop_transform, eye_centres
from monitor.cnn.votes import vote
from monitor.cnn.window import ClipWindow
from monitor.lab.cnn.dataset import clip_features, cut_clips, feature_names
from monitor.lab.cnn.labels import LabelsError, read_labels
from monitor.lab.cnn.metrics import auc_ci, evaluate, patient_votes, roc_auc

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="PyTorch is not installed (pip install 'facemonitor[train]')")


@pytest.fixture(scope="module")
def face(sample_frames):
    """(RGB frame, its landmarks) from the sample clip."""
    rgb = cv2.cvtColor(sample_frames[0], cv2.COLOR_BGR2RGB)
    with create_runner("mediapipe") as r:
        res = r.infer(rgb, 1)
    assert res.face
    return rgb, res.landmarks_px


# -- crops ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [112, 256])
def test_crop_puts_the_eyes_at_fixed_places(face, size):
    rgb, lms = face
    m = crop_transform(lms, size)
    right, left = eye_centres(lms)
    np.testing.assert_allclose(m[:, :2] @ right + m[:, 2], [EYE_X0 * size, EYE_Y * size], atol=1e-3)
    np.testing.assert_allclose(m[:, :2] @ left + m[:, 2], [EYE_X1 * size, EYE_Y * size], atol=1e-3)
    crop = align_crop(rgb, lms, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8


def test_crop_removes_head_roll(face):
    rgb, lms = face
    h, w = rgb.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 12, 1.0)
    turned = cv2.warpAffine(rgb, rot, (w, h), borderMode=cv2.BORDER_REPLICATE)
    lms2 = lms.copy()
    lms2[:, :2] = lms[:, :2] @ rot[:, :2].T + rot[:, 2]
    a, b = align_crop(rgb, lms, 112).astype(float), align_crop(turned, lms2, 112).astype(float)
    centre = slice(20, 92)
    assert np.abs(a[centre, centre] - b[centre, centre]).mean() < 6  # same face, same place
    unaligned = cv2.resize(turned[:, (w - h) // 2:(w + h) // 2], (112, 112)).astype(float)
    assert np.abs(a - unaligned).mean() > 2 * np.abs(a[centre, centre] - b[centre, centre]).mean()


def test_crop_refuses_bad_input(face):
    rgb, lms = face
    with pytest.raises(ValueError, match="uint8"):
        align_crop(rgb.astype(np.float32), lms)
    flat = lms.copy()
    flat[:, :2] = 5.0
    with pytest.raises(ValueError, match="eye centres coincide"):
        align_crop(rgb, flat)


# -- clip window ------------------------------------------------------------------------------------
def _crop(v: int, size: int = 16) -> np.ndarray:
    return np.full((size, size, 3), v % 256, np.uint8)


@pytest.mark.fast
def test_window_gives_clips_in_time_order_every_stride():
    w = ClipWindow(length=8, size=16, stride=3)
    clips = []
    for f in range(20):
        w.push(_crop(f), f)
        if w.due():
            clips.append(w.clip())
    assert [(c.first_frame, c.last_frame) for c in clips] == [(0, 7), (3, 10), (6, 13), (9, 16), (12, 19)]
    assert [int(x[0, 0, 0]) for x in clips[-1].frames] == list(range(12, 20))


@pytest.mark.fast
def test_window_restarts_after_a_frame_without_a_face():
    w = ClipWindow(length=4, size=16, stride=1)
    for f in range(3):
        w.push(_crop(f), f)
    w.reset()
    assert not w.due()
    for f in range(10, 14):
        w.push(_crop(f), f)
    assert w.due() and w.clip().first_frame == 10
    with pytest.raises(ValueError, match="uint8"):
        w.push(np.zeros((8, 8, 3), np.uint8), 99)


@pytest.mark.fast
# -- votes ----------------------------------------------------------------------------------------------
def test_votes_per_step_and_majority_leave_out_transitions():
    frames = list(range(100))
    steps = ["a"] * 30 + [""] * 10 + ["b"] * 30 + ["c"] * 30
    attempts = [1] * 100
    outputs = [{"first_frame": 0, "last_frame": 15, "p": 0.9}, {"first_frame": 10, "last_frame": 25, "p": 0.7},
               {"first_frame": 25, "last_frame": 45, "p": 0.0},  # crosses a transition: left out
               {"first_frame": 45, "last_frame": 60, "p": 0.2},
               {"first_frame": 72, "last_frame": 90, "p": 0.6}]
    r = vote(frames, steps, attempts, outputs, ("control", "MG"))
    assert r["steps"] == {"a": {"clips": 2, "mean_p": 0.8, "decision": "MG"},
                          "b": {"clips": 1, "mean_p": 0.2, "decision": "control"},
                          "c": {"clips": 1, "mean_p": 0.6, "decision": "MG"}}
    assert r["votes"] == [1, 2] and r["decision"] == "MG" and r["clips"] == 5


@pytest.mark.fast
def test_votes_tie_is_undecided_and_plain_sessions_vote_over_clips():
    outputs = [{"first_frame": 0, "last_frame": 9, "p": 0.9}, {"first_frame": 10, "last_frame": 19, "p": 0.1}]
    r = vote(range(20), None, None, outputs, ("control", "MG"))
    assert r["level"] == "clips" and r["votes"] == [1, 1] and r["decision"] is None
    r = vote(range(20), None, None, [dict(o, p=None) for o in outputs], ("control", "MG"))
    assert r["clips"] == 0 and r["decision"] is None  # benchmark outputs carry no probability


# -- labels -----------------------------------------------------------------------------------------
def _labels(tmp_path, text: str):
    p = tmp_path / "labels.csv"
    p.write_text(text)
    return p


@pytest.mark.fast
def test_labels_parse(tmp_path):
    labels = read_labels(_labels(tmp_path, "subject,diagnosis,qmg,eface_static\nA,MG,12,80\nB,control,,\nC,mg,3,\n"))
    assert labels["A"].label("diagnosis") == 1 and labels["A"].label("severity") == 1
    assert labels["B"].label("severity") is None and labels["C"].label("severity") == 0
    assert labels["A"].eface == {"static": 80.0}


@pytest.mark.fast
@pytest.mark.parametrize("text, message", [
    ("subject,qmg\nA,3\n", "no 'diagnosis' column"),
    ("subject,diagnosis\n,MG\n", "line 2: the subject id is missing"),
    ("subject,diagnosis\nA,MG\nA,control\n", "subject 'A' appears twice"),
    ("subject,diagnosis\nA,flu\n", "diagnosis 'flu' is not MG or control"),
    ("subject,diagnosis,qmg\nA,MG,45\n", "qmg: 45 is outside 0–39"),
    ("subject,diagnosis,qmg\nA,MG,lots\n", "'lots' is not a number"),
    ("subject,diagnosis\n", "has no subjects"),
])
def test_labels_errors_name_the_problem(tmp_path, text, message):
    with pytest.raises(LabelsError, match=message):
        read_labels(_labels(tmp_path, text))


@pytest.mark.fast
# -- metrics ----------------------------------------------------------------------------------------
def test_auc_matches_pairwise_definition_and_ci_brackets_it():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(30, int), np.ones(30, int)]
    s = rng.normal(y * 1.0, 1.0)
    pairs = [(a > b) + 0.5 * (a == b) for a in s[y == 1] for b in s[y == 0]]
    assert roc_auc(y, s) == pytest.approx(np.mean(pairs))
    lo, hi = auc_ci(y, s)
    assert lo < roc_auc(y, s) < hi and hi - lo < 0.5
    assert roc_auc(np.ones(3), np.arange(3)) is None


@pytest.mark.fast
def test_patient_votes_and_metrics():
    subjects = ["a", "a", "a", "b", "b", "c", "c"]
    y = [1, 1, 1, 0, 0, 0, 0]
    p = [0.9, 0.8, 0.1, 0.2, 0.6, 0.7, 0.4]  # a: 2 of 3 positive; b: tie → mean 0.4; c: tie → mean 0.55
    names, ys, scores, decisions = patient_votes(subjects, y, p)
    assert names == ["a", "b", "c"] and decisions.tolist() == [1, 0, 1]
    m = evaluate(subjects, y, p)
    assert (m["sensitivity"], m["specificity"], m["accuracy"]) == (1.0, 0.5, round(2 / 3, 4))


@pytest.mark.fast
# -- clip cutting and features ----------------------------------------------------------------------------
def test_cut_clips_trims_step_starts_and_never_crosses_steps_or_gaps():
    face = np.ones(60, bool)
    face[40] = False
    labels = ["s#1"] * 25 + [""] * 5 + ["t#1"] * 30
    assert cut_clips(face, labels, 8, 2, need_step=True) == [(2, 10, "s"), (10, 18, "s"), (32, 40, "t"),
                                                             (43, 51, "t"), (51, 59, "t")]
    assert cut_clips(face, [""] * 60, 20, 2, need_step=False) == [(0, 20, ""), (20, 40, "")]
    assert cut_clips(face, [""] * 60, 20, 2, need_step=True) == []


@pytest.mark.fast
def test_clip_features_see_a_lowering_lid():
    n = 40
    cols = {"eye_aperture_left_mm": np.linspace(10, 6, n), "eye_aperture_right_mm": np.full(n, 10.0)}
    f = dict(zip(feature_names(), clip_features(cols)))
    assert f["eye_aperture_left_change_mm"] == pytest.approx(-3.0, abs=0.2)
    assert f["eye_aperture_right_change_mm"] == 0
    assert f["eye_aperture_asymmetry_mm"] == pytest.approx(2.0, abs=0.1)
    assert np.isnan(f["mrd1_left_median_mm"])


# -- model cards --------------------------------------------------------------------------------------
def _card(sha="ab" * 32, **kw):
    return ModelCard("r3d18", 64, 112, "diagnosis", sha, "2026-11-22", data={"synthetic": True, "subjects": 12},
                     validation={"auc": 0.95, "auc_ci95": [0.8, 1.0], "sensitivity": 0.9, "specificity": 1.0, "k": 3},
                     **kw)


@pytest.mark.fast
def test_card_round_trip_and_refusals(tmp_path):
    model = tmp_path / "m.pt"
    model.write_bytes(b"x")
    with pytest.raises(ModelError, match="has no model card"):
        read_card(model)
    write_card(_card(), model)
    assert read_card(model, expect_sha256="ab" * 32).validation["auc"] == 0.95
    assert "SYNTHETIC" in (tmp_path / "m.pt.card.md").read_text()
    assert "synthetic data: patient-level AUC 0.95 (95% CI 0.80–1.00)" in read_card(model).summary_line()
    with pytest.raises(ModelError, match="belongs to another checkpoint"):
        read_card(model, expect_sha256="cd" * 32)
    (tmp_path / "m.pt.card.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        read_card(model)


# -- models, checkpoints, export (PyTorch) ---------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("arch, size", [("r3d18", 32), ("r3d34", 32), ("r3d50", 32)])
def test_models_give_two_logits(arch, size):
    import torch

    from monitor.lab.cnn.model import build_model

    m = build_model(arch).eval()
    with torch.no_grad():
        assert m(torch.zeros(2, 3, 8, size, size)).shape == (2, 2)


@needs_torch
def test_inflated_kernels_answer_a_still_clip_like_the_2d_kernels():
    import torch
    import torch.nn.functional as F

    from monitor.lab.cnn.model import build_model, inflate_2d

    torch.manual_seed(0)
    m = build_model("r3d18").eval()
    own = m.state_dict()
    state_2d = {k: torch.randn(v.shape[:2] + v.shape[3:]) if v.dim() == 5 else torch.randn(v.shape)
                for k, v in own.items() if not k.startswith("fc.") and v.dtype.is_floating_point}
    missing = inflate_2d(m, state_2d)
    assert set(missing) >= {"fc.weight", "fc.bias"} and "conv1.weight" not in missing
    image = torch.randn(1, 3, 32, 32)
    still = image[:, :, None].repeat(1, 1, 5, 1, 1)  # one image, five frames
    out3 = m.conv1(still)[:, :, 2]  # a middle frame: the temporal kernel sees only that image
    out2 = F.conv2d(image, state_2d["conv1.weight"], stride=2, padding=3)
    torch.testing.assert_close(out3, out2, atol=1e-4, rtol=1e-4)
    bad = dict(state_2d, **{"conv1.weight": torch.randn(64, 3, 5, 5)})
    with pytest.raises(ValueError, match="does not inflate"):
        inflate_2d(m, bad)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An r3d18 checkpoint (random weights, 16 frames of 64×64) with a card naming its hash."""
    pytest.importorskip("torch", reason="PyTorch is not installed (pip install 'facemonitor[train]')")
    import torch

    from engines.util import file_sha256
    from monitor.lab.cnn.checkpoint import save_checkpoint
    from monitor.lab.cnn.model import build_model

    torch.manual_seed(0)
    path = save_checkpoint(build_model("r3d18"), tmp_path_factory.mktemp("ck") / "m.pt", 16, 64, "diagnosis")
    card = _card(file_sha256(path))
    card.frames, card.size = 16, 64
    write_card(card, path)
    return path


@needs_torch
def test_checkpoint_refuses_wrong_architecture_size_and_corrupt_files(checkpoint, tmp_path):
    from monitor.lab.cnn.checkpoint import export_onnx, load_checkpoint

    assert load_checkpoint(checkpoint).arch == "r3d18"
    with pytest.raises(ModelError, match="asked for architecture r3d34"):
        load_checkpoint(checkpoint, arch="r3d34")
    with pytest.raises(ModelError, match="asked for size 112"):
        export_onnx(tmp_path / "x.onnx", "r3d18", 16, 112, checkpoint)
    assert not list(tmp_path.glob("*.onnx*")), "nothing half-written"
    broken = tmp_path / "broken.pt"
    broken.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(ModelError, match="not a readable facemonitor checkpoint"):
        load_checkpoint(broken)


@needs_torch
def test_onnx_export_matches_pytorch(checkpoint, tmp_path):
    import torch

    from engines.clip import OrtClipRunner, prepare_clips
    from monitor.lab.cnn.checkpoint import export_onnx, load_checkpoint

    r = export_onnx(tmp_path / "m.onnx", "r3d18", 16, 64, checkpoint)
    assert r["trained"] and json.loads((tmp_path / "m.onnx.card.json").read_text())["arch"] == "r3d18"
    clips = np.random.default_rng(0).integers(0, 256, (3, 16, 64, 64, 3), dtype=np.uint8)
    with torch.no_grad():
        ref = torch.softmax(load_checkpoint(checkpoint).model()(torch.from_numpy(prepare_clips(clips))), 1)[:, 1]
    with OrtClipRunner(tmp_path / "m.onnx", threads=2) as runner:
        assert (runner.info.arch, runner.info.frames, runner.info.size) == ("r3d18", 16, 64)
        got = runner.infer(clips)
        with pytest.raises(ValueError, match=r"clips must be \(batch, 16, 64, 64, 3\)"):
            runner.infer(clips[:, :8])
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-4)


@needs_torch
def test_runtime_refuses_foreign_untrained_and_uncarded_models(checkpoint, tmp_path):
    import shutil

    import torch

    from engines.clip import ClipModelError, OrtClipRunner
    from monitor.cnn.live import load_clip_model
    from monitor.lab.cnn.checkpoint import export_onnx

    foreign = tmp_path / "foreign.onnx"
    torch.onnx.export(torch.nn.Linear(4, 2), (torch.zeros(1, 4),), str(foreign), dynamo=False)
    with pytest.raises(ClipModelError, match="not a facemonitor clip model"):
        OrtClipRunner(foreign).activate()
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not onnx")
    with pytest.raises(ClipModelError, match="not a readable ONNX model"):
        OrtClipRunner(garbage).activate()
    untrained = tmp_path / "untrained.onnx"
    export_onnx(untrained, "r3d18", 16, 64)
    with pytest.raises(ModelError, match="untrained weights"):
        load_clip_model(untrained)
    runner, card = load_clip_model(untrained, allow_untrained=True)  # benchmarks only
    assert card is None
    runner.deactivate()
    trained = tmp_path / "trained.onnx"
    export_onnx(trained, "r3d18", 16, 64, checkpoint)
    runner, card = load_clip_model(trained)
    assert card.validation["auc"] == 0.95
    runner.deactivate()
    (tmp_path / "trained.onnx.card.json").unlink()
    with pytest.raises(ModelError, match="has no model card"):
        load_clip_model(trained)
    shutil.copyfile(checkpoint.with_name("m.pt.card.json"), tmp_path / "untrained.onnx.card.json")
    with pytest.raises(ModelError, match="untrained"):
        load_clip_model(untrained)


# -- the CNN beside the landmarks ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_onnx(checkpoint, tmp_path_factory):
    from monitor.lab.cnn.checkpoint import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "m.onnx"
    export_onnx(out, "r3d18", 16, 64, checkpoint)
    return out


@needs_torch
def test_analyze_runs_every_clip_and_votes_per_step(trained_onnx, sample_video, tmp_path):
    from helpers import run_cli

    from monitor.store.db import Store

    steps = tmp_path / "steps.csv"
    steps.write_text("0,1.2,neutral\n1.2,2.4,happiness\n")
    store = tmp_path / "store"
    r = run_cli("analyze", sample_video, "--json", "--cnn", trained_onnx, "--cnn-stride", "8", "--steps", steps,
                store=store)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    cnn = out["summary"]["cnn"]
    assert cnn["mode"] == "all" and cnn["stats"]["skipped"] == 0
    faces = out["frames_with_face"]
    assert cnn["clips"] == (faces - 16) // 8 + 1 and faces == out["frames"]
    assert set(cnn["steps"]) <= {"neutral", "happiness"} and cnn["steps"]  # clips across 1.2 s are left out
    assert sum(s["clips"] for s in cnn["steps"].values()) < cnn["clips"]
    assert cnn["validation"]["auc"] == 0.95 and "synthetic data" in cnn["model"]
    with Store(store) as s:
        stored = s.clip_outputs(out["session_id"])
    assert len(stored) == cnn["clips"] and all(o["last_frame"] - o["first_frame"] == 15 for o in stored)


@needs_torch
def test_live_mode_never_holds_up_the_landmarks(checkpoint, trained_onnx, sample_video, store_dir):
    import pyarrow.parquet as pq
    import torch

    from engines.clip import prepare_clips
    from monitor.capture.sources import read_rgb_frames
    from monitor.engine.options import CnnOptions
    from monitor.lab.cnn.checkpoint import load_checkpoint
    from monitor.session.options import SessionOptions
    from monitor.session.run import run_session

    seen = []
    r = run_session(SessionOptions(str(sample_video), store_root=store_dir, mode="live", realtime=True, repeat=3,
                                   cnn=CnnOptions(str(trained_onnx), stride=2, mode="live"), on_clip=seen.append))
    stats = r.summary.cnn["stats"]
    assert stats["clips"] >= 1 and len(seen) == stats["clips"]
    assert stats["skipped"] > 0  # a clip every 2 frames is more than the CPU runs: the newest wins
    # each reported p is the checkpoint's P(class 1) on the clip it names: the 16 frames the engine analysed
    # from first_frame to last_frame (frame id i is video frame i mod 72), cropped at the stored landmarks
    video, _ = read_rgb_frames(sample_video)
    table = pq.read_table(r.series_path, columns=["frame", "landmarks_px"])
    landmarks = dict(zip(table.column("frame").to_pylist(), table.column("landmarks_px").to_pylist()))
    # the landmark path never waits for the CNN: every captured frame was analysed, or dropped by the live
    # mailbox and logged with its id; nothing is lost silently (its rate is a benchmark figure: bench --cnn)
    analysed = set(landmarks)
    assert analysed.isdisjoint(r.dropped_frame_ids)
    assert analysed | set(r.dropped_frame_ids) == set(range(max(analysed | set(r.dropped_frame_ids)) + 1))
    model = load_checkpoint(checkpoint).model()
    for o in seen[:8]:
        ids = [f for f in landmarks if o["first_frame"] <= f <= o["last_frame"]]
        assert len(ids) == 16 and ids[0] == o["first_frame"] and ids[-1] == o["last_frame"], o
        clip = np.stack([align_crop(video[f % len(video)], np.asarray(landmarks[f], np.float32).reshape(478, 3), 64)
                         for f in ids])
        with torch.no_grad():
            want = torch.softmax(model(torch.from_numpy(prepare_clips(clip[None]))), 1)[0, 1].item()
        assert o["p"] == pytest.approx(want, abs=2e-4), o
    assert len({round(o["p"], 3) for o in seen}) > 1 or len(seen) == 1  # different clips, different answers


@needs_torch
def test_analyze_refuses_an_untrained_model_before_anything_is_recorded(checkpoint, sample_video, tmp_path):
    from helpers import run_cli

    from monitor.lab.cnn.checkpoint import export_onnx

    untrained = export_onnx(tmp_path / "u.onnx", "r3d18", 16, 64)["onnx"]
    store = tmp_path / "store"
    r = run_cli("analyze", sample_video, "--cnn", untrained, store=store)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "untrained" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (store / "sessions").exists() or not any((store / "sessions").iterdir())
    r = run_cli("analyze", sample_video, "--cnn", tmp_path / "missing.onnx", store=store)
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_dataset_from_logged_sessions_cuts_clips_inside_steps(sample_video, tmp_path):
    from helpers import run_cli

    from monitor.lab.cnn.dataset import Dataset
    from monitor.store.db import Store

    steps = tmp_path / "steps.csv"
    steps.write_text("0,1.2,neutral\n1.2,2.4,happiness\n")
    store = tmp_path / "store"
    r = run_cli("analyze", sample_video, "--json", "--steps", steps, "--person", "P1", store=store)
    assert r.returncode == 0, r.stderr
    sid = json.loads(r.stdout)["session_id"]
    r = run_cli("analyze", sample_video, "--json", "--person", "P3", store=store)  # not labelled: ignored
    with Store(store) as s:
        s.set_video(sid, sample_video)  # a file analysed in record mode: one video frame per series row
    labels = tmp_path / "labels.csv"
    labels.write_text("subject,diagnosis,qmg\nP1,MG,11\nP2,control,\n")
    out = tmp_path / "ds"
    r = run_cli("cnn", "dataset", "--from-store", "--labels", labels, "--out", out, "--frames", 16, "--size", 64,
                store=store)
    assert r.returncode == 2 and "without any usable video: P2" in r.stderr and not out.exists()
    labels.write_text("subject,diagnosis,qmg\nP1,MG,11\n")
    r = run_cli("cnn", "dataset", "--from-store", "--labels", labels, "--out", out, "--frames", 16, "--size", 64,
                store=store)
    assert r.returncode == 0, r.stderr
    ds = Dataset.open(out)
    assert [(row["step"], row["session"]) for row in ds.index] == [("neutral", sid), ("happiness", sid)]
    assert int(ds.index[0]["first_frame"]) == 15  # the step's first 0.5 s left out
    assert ds.clip(0).shape == (16, 64, 64, 3)
    assert np.isfinite(ds.features[:, 0]).all()  # eye aperture medians came from the stored series
    assert ds.labels()["P1"].label("severity") == 1


def test_results_show_the_cnn_only_with_its_card():
    from monitor.app.review import cnn_markdown

    stats = {"clips": 3, "skipped": 1, "clips_per_s": 0.5}
    assert cnn_markdown(None) == []
    assert cnn_markdown({"benchmark": True, "stats": stats, "clips": 3}) == []  # untrained: never shown
    md = "\n".join(cnn_markdown({
        "model": _card().summary_line(), "synthetic": True, "classes": ["control", "MG"], "clips": 3,
        "stats": stats, "steps": {"neutral": {"clips": 2, "mean_p": 0.71, "decision": "MG"}},
        "votes": [0, 1], "decision": "MG", "level": "steps"}))
    assert "not a diagnosis" in md and "patient-level AUC 0.95 (95% CI 0.80–1.00)" in md
    assert "synthetic data" in md and "neutral 0.71 → MG" in md and "control 0, MG 1 → **MG**" in md


@needs_torch
def test_app_refuses_an_untrained_model_before_serving(tmp_path):
    from helpers import free_port, run_cli

    from monitor.lab.cnn.checkpoint import export_onnx

    untrained = export_onnx(tmp_path / "u.onnx", "r3d18", 16, 64)["onnx"]
    r = run_cli("app", "--cnn", untrained, "--port", free_port(), "--source", "x.mp4", store=tmp_path / "s", timeout=60)
    assert r.returncode == 2 and "untrained" in r.stderr
