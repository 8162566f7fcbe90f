"""The landmark pipeline on the exported ONNX networks, without the MediaPipe runtime."""

import json
import math
import shutil

import cv2
import numpy as np
import pytest

from engines import BackendUnavailable, create_runner
from engines.facemesh import detector, roi
from engines.facemesh.geometry import CanonicalFace, FaceGeometry, weighted_similarity
from engines.facemesh.models import MANIFEST, LandmarkModelError, check_io, load_model_set
from engines.facemesh.protowire import ProtoError
from engines.trt import EngineKey, stale_reason
from tests.helpers import run_cli


@pytest.fixture(scope="session")
def models():
    """The exported networks in the cache, exported once by the real command (which prepares its own
    TensorFlow environment in the cache on first use) and reused by later runs."""
    try:
        return load_model_set()
    except LandmarkModelError:
        r = run_cli("models", "export-onnx", timeout=900)
        assert r.returncode == 0, r.stderr[-2000:]
        return load_model_set()


@pytest.fixture(scope="session")
def rgb_frames(sample_frames):
    return [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in sample_frames]


# -- pure parts ---------------------------------------------------------------------------------------

@pytest.mark.fast
def test_anchors_cover_the_two_grids():
    a = detector.anchors()
    assert a.shape == (896, 2)
    assert np.allclose(a[0], [1 / 32, 1 / 32]) and np.allclose(a[1], a[0])  # two anchors per 16×16 cell
    assert np.allclose(a[512], [1 / 16, 1 / 16]) and np.allclose(a[512:518], a[512])  # six per 8×8 cell
    assert np.allclose(a[-1], [15 / 16, 15 / 16])


@pytest.mark.fast
def test_decode_places_a_box_and_merges_overlaps_by_score():
    reg = np.zeros((896, 16), np.float32)
    scores = np.full(896, -10.0, np.float32)
    k = 16 * 8 * 2 + 8 * 2  # an anchor at cell (8, 8) of the 16×16 grid: centre (17/32, 17/32)
    reg[k, 2:4] = 32  # 32/128 of the input wide and high
    reg[k + 1] = reg[k]
    reg[k + 1, 0] = 1.28  # the twin anchor, 1% of the input to the right
    scores[[k, k + 1]] = [4.0, 2.0]
    pad = detector.Letterbox(0.0, 0.125)  # a 4:3 image letterboxed top and bottom
    dets = detector.decode(reg, scores, pad, 0.5)
    assert len(dets) == 1  # overlapping boxes merge
    d = dets[0]
    p1, p2 = 1 / (1 + math.exp(-4)), 1 / (1 + math.exp(-2))
    cx = 17 / 32 + 0.01 * p2 / (p1 + p2)
    assert d.score == pytest.approx(p1)
    assert d.box[0] + d.box[2] / 2 == pytest.approx(cx, abs=1e-5)
    assert d.box[3] == pytest.approx(0.25 / 0.75, abs=1e-5)  # height un-letterboxed
    assert d.box[1] + d.box[3] / 2 == pytest.approx((17 / 32 - 0.125) / 0.75, abs=1e-5)


@pytest.mark.fast
def test_crop_and_projection_are_inverse():
    rect = roi.RotatedRect(320.0, 180.0, 200.0, 150.0, 0.3)
    m = rect.crop_to_image(256)
    corners = np.array([[0, 0, 0], [256, 0, 0], [256, 256, 0], [128, 128, 10]], np.float32)
    img = roi.project(corners, rect, 256, (640, 360))
    assert img[3, :2] == pytest.approx([320, 180])
    assert np.linalg.norm(img[1, :2] - img[0, :2]) == pytest.approx(200, rel=1e-5)
    assert math.atan2(img[1, 1] - img[0, 1], img[1, 0] - img[0, 0]) == pytest.approx(0.3)
    assert np.allclose(img[:3, :2], corners[:3, :2] @ m[:, :2].T + m[:, 2])
    # z: the crop's x axis measured in image-normalised coordinates, times the image width (MediaPipe)
    x_axis_normalised = (img[1, :2] - img[0, :2]) / [640, 360]
    assert img[3, 2] == pytest.approx(10 / 256 * np.linalg.norm(x_axis_normalised) * 640, rel=1e-5)
    assert img[3, 2] > 10 * 200 / 256  # tilted in a wide image: longer than the side
    square = roi.project(corners, rect, 256, (500, 500))
    assert square[3, 2] == pytest.approx(10 * 200 / 256)  # in a square image, the side at any angle


@pytest.mark.fast
def test_weighted_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(3, 40))
    a = 0.4
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    dst = 1.7 * rot @ src + np.array([[1.0], [-2.0], [3.0]])
    m = weighted_similarity(src, dst, rng.uniform(0.5, 1, 40))
    assert np.allclose(m[:3, :3], 1.7 * rot) and np.allclose(m[:3, 3], [1, -2, 3])


@pytest.mark.fast
def test_geometry_metadata_garbage_is_refused():
    with pytest.raises(ProtoError):
        CanonicalFace.from_bytes(b"\x0a\xff\xff")
    with pytest.raises(ProtoError):
        CanonicalFace.from_bytes(b"")


@pytest.mark.fast
def test_tensorrt_engine_built_elsewhere_is_stale(tmp_path):
    key = EngineKey("ab" * 32, "NVIDIA H100", "9.0", "10.9.0", "fp16")
    sidecar = tmp_path / "m.json"
    assert "missing" in stale_reason(sidecar, key)
    sidecar.write_text(json.dumps(dict(key.__dict__, gpu="NVIDIA A10", compute_capability="8.6")))
    assert "NVIDIA A10" in stale_reason(sidecar, key)
    sidecar.write_text(json.dumps(dict(key.__dict__, tensorrt="8.6.1")))
    assert "8.6.1" in stale_reason(sidecar, key)
    sidecar.write_text(json.dumps(key.__dict__))
    assert stale_reason(sidecar, key) is None


def _run(n, landmarks, **columns):
    """A run_measures-like result: n frames of the given landmarks (NaN: no face), no blendshapes."""
    out = {"landmarks": np.repeat(np.asarray(landmarks, float)[None], n, 0), "blendshapes": np.zeros((n, 52))}
    out.update({k: np.full(n, v, float) for k, v in columns.items()})
    return out


@pytest.mark.fast
def test_parity_report_figures_and_targets():
    """compare_runs on runs made here: each figure is the planted difference, and passes() fails for each
    target missed (and not for an image-refined column beyond 0.3 mm on one frame)."""
    from synthetic_face import face

    from monitor.lab.parity import compare_runs

    pts, _ = face()  # intercanthal distance 54 px
    ref = _run(40, pts, eye_aperture_left_mm=9.0, intercanthal_mm=30.0)
    ref["landmarks"][39] = np.nan  # no face in either run
    got = _run(40, pts + [0.5, 0, 0], eye_aperture_left_mm=9.0, intercanthal_mm=30.1)
    got["landmarks"][39] = np.nan
    got["eye_aperture_left_mm"][3] = 11.0  # a refined column picks another edge on one frame
    got["blendshapes"][5, 9] = 0.02
    r = compare_runs(ref, got)
    assert (r.frames, r.frames_compared, r.face_disagreements) == (40, 39, 0)
    assert r.landmark_pct_iod_mean == pytest.approx(0.5 / 54 * 100) and r.landmark_pct_iod_p95 == pytest.approx(0.5 / 54 * 100)
    assert r.blendshape_max_diff == pytest.approx(0.02) and r.blendshape_mean_diff == pytest.approx(0.02 / 39 / 52)
    assert r.series_max_diff_mm == pytest.approx(2.0) and r.worst_series_column == "eye_aperture_left_mm"
    assert r.landmark_series_max_diff_mm == pytest.approx(0.1, abs=1e-6) and r.series_p95_diff_mm == pytest.approx(0.1, abs=1e-6)
    assert r.passes() and r.as_dict()["series_max_diff_mm"] == 2.0
    missed = {
        "face": dict(landmarks=np.where(np.arange(40)[:, None, None] == 7, np.nan, got["landmarks"])),
        "landmarks": dict(landmarks=got["landmarks"] + [0.1, 0, 0]),  # 0.6 px: over 1% of 54 px
        "blendshapes": dict(blendshapes=got["blendshapes"] + 0.06),
        "landmark column": dict(intercanthal_mm=np.where(np.arange(40) == 8, 30.5, got["intercanthal_mm"])),
    }
    for why, change in missed.items():
        assert not compare_runs(ref, dict(got, **change)).passes(), why
    nothing = compare_runs(ref, dict(got, landmarks=np.full_like(got["landmarks"], np.nan)))
    assert nothing.frames_compared == 0 and nothing.face_disagreements == 39 and not nothing.passes()


# -- the exported networks ------------------------------------------------------------------------------

def test_export_manifest_pins_every_file(models):
    m = models.manifest
    assert set(m["files"]) == {"face_detector.onnx", "face_landmarks_detector.onnx", "face_blendshapes.onnx",
                               "geometry_pipeline_metadata_landmarks.binarypb"}
    assert all(c["max_abs_diff_over_range"] < 2e-3 for c in m["tflite_check"].values())
    assert m["tflite_check"]["landmarks"]["prelu_rewritten"] > 0


def test_geometry_matches_mediapipe_matrix(models, rgb_frames):
    geometry = FaceGeometry(CanonicalFace.from_file(models.geometry))
    with create_runner("mediapipe") as runner:
        for i, rgb in enumerate(rgb_frames[:5]):
            res = runner.infer(rgb, i * 33)
            h, w = rgb.shape[:2]
            m = geometry.matrix(res.landmarks_px / np.array([w, h, w], np.float32), w, h)
            assert np.abs(m - res.matrix).max() < 1e-3


def _copy(models, tmp_path):
    folder = tmp_path / "onnx"
    shutil.copytree(models.folder, folder)
    return folder


def test_altered_model_file_is_refused_with_its_hash(models, tmp_path):
    folder = _copy(models, tmp_path)
    with open(folder / "face_blendshapes.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(LandmarkModelError, match="SHA-256"):
        load_model_set(folder)


def test_onnx_with_unexpected_inputs_is_refused(models, tmp_path):
    folder = _copy(models, tmp_path)
    with pytest.raises(LandmarkModelError, match="not the landmarks network"):
        check_io(folder / "face_blendshapes.onnx", "landmarks")
    # swapped in under the right name and re-pinned in the manifest: the I/O check still refuses it
    shutil.copy(folder / "face_detector.onnx", folder / "face_landmarks_detector.onnx")
    manifest = json.loads((folder / MANIFEST).read_text())
    from engines.util import file_sha256

    manifest["files"]["face_landmarks_detector.onnx"] = file_sha256(folder / "face_landmarks_detector.onnx")
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(LandmarkModelError, match="expected input"):
        load_model_set(folder)


@pytest.mark.fast
def test_missing_export_names_the_command(tmp_path):
    with pytest.raises(LandmarkModelError, match="models export-onnx"):
        load_model_set(tmp_path / "nothing")


def test_export_tools_that_do_not_exist_are_a_clear_error(tmp_path):
    r = run_cli("models", "export-onnx", "--out", tmp_path / "out", env={"FACEMONITOR_EXPORT_PYTHON": "/nonexistent/python"})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("error: FACEMONITOR_EXPORT_PYTHON=/nonexistent/python does not exist")
    assert not (tmp_path / "out").exists()


def test_cuda_backend_is_refused_without_a_gpu_never_silently_on_cpu(models):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has ONNX Runtime CUDA")
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider"):
        create_runner("onnx-cuda").activate()


def test_results_have_the_mediapipe_form(models, rgb_frames):
    with create_runner("onnx") as onnx_runner, create_runner("mediapipe") as mp_runner:
        got, ref = onnx_runner.infer(rgb_frames[0], 0), mp_runner.infer(rgb_frames[0], 0)
        empty = onnx_runner.infer(np.zeros((240, 320, 3), np.uint8), 40)
    assert got.face and got.faces == ref.faces == 1
    for name in ("landmarks_px", "blendshapes", "matrix"):
        a, b = getattr(got, name), getattr(ref, name)
        assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    assert not empty.face


@pytest.mark.slow
@pytest.mark.parametrize("tracking", ["detector", "landmarks"])
def test_parity_with_mediapipe_on_the_sample(models, rgb_frames, tracking):
    """Each tracking mode against the MediaPipe configuration it reproduces (four faces: a detection
    every frame; one face: tracking and smoothing)."""
    from monitor.lab.parity import MAX_BLENDSHAPE_DIFF, MAX_LANDMARK_PCT_IOD, MAX_SERIES_DIFF_MM, compare_backends

    report = compare_backends(rgb_frames, 30.0, "onnx", tracking=tracking)
    assert report.frames_compared == len(rgb_frames) and report.face_disagreements == 0
    assert report.landmark_pct_iod_mean <= MAX_LANDMARK_PCT_IOD
    assert report.blendshape_max_diff <= MAX_BLENDSHAPE_DIFF
    assert report.landmark_series_max_diff_mm <= MAX_SERIES_DIFF_MM
    assert report.series_p95_diff_mm <= MAX_SERIES_DIFF_MM
    # not only a good mean: the landmarks of the worst 5% of frames are within the mean's target too
    assert report.landmark_pct_iod_p95 <= MAX_LANDMARK_PCT_IOD


@pytest.fixture(scope="module")
def moving_head(sample):
    """150 frames of a head that turns and tilts by up to 7° in a 16:9 frame."""
    from monitor.capture.sources import read_rgb_frames

    return read_rgb_frames(sample("WolfgangLanger_Pexels.mp4"), 150)


@pytest.mark.slow
def test_detector_tracking_parity_on_a_moving_head(models, moving_head):
    """The z scale of a tilted region must agree with MediaPipe's too (it feeds the iris scale). The
    image-refined lid and lip columns may differ on single frames where their edge search has two
    near-equal edges; they must not do so more often than MediaPipe's own landmarks moved by 0.02 px."""
    from monitor.lab.parity import compare_runs, refined_beyond
    from monitor.lab.validation import run_measures

    frames, fps = moving_head
    ref = run_measures(frames, fps)
    got = run_measures(frames, fps, backend="onnx", tracking="detector")
    report = compare_runs(ref, got)
    assert report.face_disagreements == 0 and report.frames_compared == len(frames)
    assert report.passes(), report.as_dict()
    own = [refined_beyond(ref, run_measures(frames, fps, landmark_noise_px=0.02, seed=s)) for s in range(3)]
    assert max(own) > 0  # the refinement's own sensitivity is real ...
    assert refined_beyond(ref, got) <= 2 * np.mean(own) + 2  # ... and the backends' differences are of its size


@pytest.mark.slow
def test_landmark_tracking_parity_on_a_moving_head(models, moving_head, monkeypatch):
    """Tracking feeds each frame's landmarks into the next frame's region, so in fast motion the
    landmark network's sensitivity to its framing adds up: moving the region by 0.01 px (the size of
    the backends' numerical agreement) changes single frames by a few tenths of a mm. The difference
    from MediaPipe tracking must be of that size, and the averages within the parity targets."""
    import dataclasses

    from monitor.lab.parity import (
        MAX_BLENDSHAPE_DIFF,
        MAX_LANDMARK_PCT_IOD,
        MAX_SERIES_DIFF_MM,
        compare_backends,
        compare_runs,
    )
    from monitor.lab.validation import run_measures

    frames, fps = moving_head
    report = compare_backends(frames, fps, "onnx", tracking="landmarks")
    assert report.face_disagreements == 0 and report.frames_compared == len(frames)
    assert report.landmark_pct_iod_mean <= MAX_LANDMARK_PCT_IOD / 5
    assert report.blendshape_max_diff <= MAX_BLENDSHAPE_DIFF
    assert report.series_p95_diff_mm <= MAX_SERIES_DIFF_MM

    base = run_measures(frames, fps, backend="onnx", tracking="landmarks")
    unshifted = roi.rect_from_landmarks

    def shifted(pts, *args):
        rect = unshifted(pts, *args)
        return dataclasses.replace(rect, cx=rect.cx + 0.01)

    monkeypatch.setattr(roi, "rect_from_landmarks", shifted)
    own = compare_runs(base, run_measures(frames, fps, backend="onnx", tracking="landmarks"))
    assert own.landmark_series_max_diff_mm > 0.05  # the sensitivity is real ...
    assert report.landmark_series_max_diff_mm <= 3 * own.landmark_series_max_diff_mm  # ... and accounts for the rest
    assert report.landmark_pct_iod_mean <= 2 * own.landmark_pct_iod_mean


@pytest.mark.slow
def test_landmark_tracking_runs_the_detector_only_when_needed(models, rgb_frames):
    runner = create_runner("onnx", tracking="landmarks")
    with runner:
        for i, f in enumerate(rgb_frames):
            assert runner.infer(f, i * 33 + 1).face
        detections = runner.track.detections
    # the first frame, then one face count every 30 frames
    assert detections == 1 + (len(rgb_frames) - 1) // 30


@pytest.mark.fast
def test_one_euro_smoother_holds_a_still_point_and_follows_a_moving_one():
    from engines.facemesh.smoothing import OneEuroSmoother

    rng = np.random.default_rng(3)
    face = rng.uniform(0, 200, (478, 3))  # a face about 200 px across
    still, moving = OneEuroSmoother(), OneEuroSmoother()
    first = still.apply(face, 33_000)
    assert np.array_equal(first, face.astype(np.float32))  # the first frame passes through
    jitter_in, jitter_out, lag = [], [], []
    for k in range(1, 60):
        t = 33_000 * (k + 1)
        noisy = face + rng.normal(0, 0.1, face.shape)  # sub-pixel jitter of a still face
        jitter_in.append(np.abs(noisy - face).mean())
        jitter_out.append(np.abs(still.apply(noisy, t) - face).mean())
        shifted = face + [12.0 * k, 0.0, 0.0]  # 12 px per frame: fast head motion
        lag.append(np.abs(moving.apply(shifted, t) - shifted)[:, 0].mean())
    assert np.mean(jitter_out[20:]) < 0.35 * np.mean(jitter_in[20:])  # still: jitter mostly removed
    assert np.mean(lag[20:]) < 2.0  # moving: within a few px of a 12 px/frame motion
    still.apply(face, 33_000 * 60)
    assert np.array_equal(still.apply(face + 5, 33_000 * 60), (face + 5).astype(np.float32))  # a repeated timestamp: as given
    still.reset()
    assert np.array_equal(still.apply(face + 9, 10**9), (face + 9).astype(np.float32))  # after a reset: as given


@pytest.mark.fast
def test_one_euro_smoother_is_the_same_at_any_face_size():
    from engines.facemesh.smoothing import OneEuroSmoother

    rng = np.random.default_rng(4)
    face = rng.uniform(0, 100, (478, 3))
    small, large = OneEuroSmoother(), OneEuroSmoother()
    for k in range(30):
        step = face + rng.normal(0, 2.0, face.shape) + [k * 3.0, 0, 0]
        a, b = small.apply(step, 1000 + 33_333 * k), large.apply(step * 4.0, 1000 + 33_333 * k)
    assert np.allclose(b, 4.0 * a, rtol=1e-4, atol=1e-3)


def test_batch_of_streams_equals_one_by_one(models, rgb_frames):
    from engines.facemesh_backend import OnnxCpuLandmarker

    batch = [create_runner("onnx").activate() for _ in range(3)]
    alone = [create_runner("onnx").activate() for _ in range(3)]
    try:
        picks = [rgb_frames[0], rgb_frames[20], cv2.flip(rgb_frames[40], 1)]
        for t in range(2):
            together = OnnxCpuLandmarker.infer_batch(batch, picks, [t * 33 + 1] * 3)
            single = [r.infer(f, t * 33 + 1) for r, f in zip(alone, picks)]
            for a, b in zip(together, single):
                assert np.abs(a.landmarks_px - b.landmarks_px).max() < 1e-2
                assert np.abs(a.blendshapes - b.blendshapes).max() < 1e-3
        assert batch[0].pipeline is batch[1].pipeline  # one set of networks for the process
    finally:
        for r in batch + alone:
            r.deactivate()


def test_analyze_with_the_onnx_backend(models, sample_video, store_dir):
    r = run_cli("analyze", str(sample_video), "--backend", "onnx", "--store", str(store_dir), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "complete" and out["frames_with_face"] == out["frames"] > 60


def test_analyze_refuses_an_altered_export(models, sample_video, store_dir, tmp_path):
    folder = _copy(models, tmp_path)
    (folder / "face_detector.onnx").write_bytes(b"not a model")
    r = run_cli("analyze", str(sample_video), "--backend", "onnx", "--store", str(store_dir),
                env={"FACEMONITOR_ONNX_DIR": str(folder)})
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "SHA-256" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "LandmarkModelError" not in r.stderr


# -- GPU ------------------------------------------------------------------------------------------------

def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="no CUDA GPU here")
@pytest.mark.parametrize("backend", ["onnx-cuda", "tensorrt"])
def test_gpu_backend_parity(models, rgb_frames, backend):
    from monitor.lab.parity import compare_backends

    try:
        report = compare_backends(rgb_frames, 30.0, backend)
    except BackendUnavailable as e:
        pytest.skip(str(e))
    assert report.landmark_pct_iod_mean <= 1.0 and report.blendshape_max_diff <= 0.05
