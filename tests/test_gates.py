"""Plausibility gates (docs/measures.md, "Plausibility gates"): a mesh that does not sit on a face is
refused with a reason, every measure (angles and the weaker side included) is withheld beyond the pose
gate, and the mouth-corner refinement is used only where the lips meet. Real model, registry samples."""

import math

import cv2
import numpy as np
import pytest

from calibration.scale import IrisScale
from engines import create_runner
from monitor.lab import synthetic
from monitor.measures import gates
from monitor.measures.frame import compute_measures
from monitor.measures.gates import LIMITS, MeshGeometry, mesh_refusal, pose_refusal
from monitor.measures.kernels import MouthSlot, eye_evidence, mouth_corners, reference
from monitor.measures.kernels._mouth import MAX_LIP_GAP
from monitor.measures.schema import ANGLE_COLUMNS, AREA_COLUMNS, LENGTH_COLUMNS
from monitor.measures.summary import summarize
from monitor.store.series import build_table

MEASURES = LENGTH_COLUMNS + AREA_COLUMNS + ANGLE_COLUMNS  # the mm, mm² and degree columns (head pose included)
FRONTAL_EYES = np.array([[40.0, 120.0], [45.0, 110.0]])  # [iris luma, sclera luma] per eye: real eyes


def rgb_of(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def measure_photo(rgb: np.ndarray) -> tuple[dict, object]:
    with create_runner("mediapipe") as r:
        res = r.infer(rgb, 1)
    return compute_measures(res, IrisScale(), rgb), res


def one_frame_summary(row: dict, landmarks) -> dict:
    table = build_table([{"frame": 0, "t_s": 0.0, "face": True, "faces": 1, "step": "", **row}], [landmarks])
    return summarize(table, still=True).as_dict()


@pytest.fixture(scope="module")
def clip(sample_frames):
    """Every frame of single_face.mp4 (2.4 s: still, then talking and smiling) with its measures."""
    rgb = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in sample_frames]
    scale = IrisScale()
    with create_runner("mediapipe") as r:
        res = [r.infer(f, i * 33 + 1) for i, f in enumerate(rgb)]
    return rgb, res, [compute_measures(x, scale, f) for x, f in zip(res, rgb)]


# ---- the gates as pure computation ----------------------------------------------------------------------

@pytest.mark.fast
def test_the_ranges_are_the_adult_ranges_widened_for_the_iris_scale():
    assert LIMITS.ipd_mm == pytest.approx((52.0 * 0.87, 78.0 * 1.25))
    assert LIMITS.intercanthal_mm == pytest.approx((25.0 * 0.87, 41.0 * 1.25))


@pytest.mark.fast
@pytest.mark.parametrize("ipd_mm, icd_mm, want", [
    (63.0, 32.0, None),  # the adult means
    (46.0, 22.0, None),  # small but inside the widened ranges
    (90.0, 50.0, None),  # a squint inflates the implied lengths
    (42.0, 32.0, "ipd_implausible"), (98.0, 32.0, "ipd_implausible"),
    (63.0, 21.0, "intercanthal_implausible"), (63.0, 52.0, "intercanthal_implausible"),
])
def test_lengths_outside_the_human_range_refuse_the_mesh(ipd_mm, icd_mm, want):
    px_per_mm = 1.5  # an iris 11.7 mm wide spans 17.55 px
    geometry = MeshGeometry(ipd_mm * px_per_mm, icd_mm * px_per_mm, 11.7 * px_per_mm)
    assert mesh_refusal(geometry, FRONTAL_EYES, (0.1, 0.1), 11.7) == want
    # a frame without an iris scale has nothing in mm to judge
    assert mesh_refusal(MeshGeometry(ipd_mm, icd_mm, math.nan), FRONTAL_EYES, (0.1, 0.1), 11.7) is None


@pytest.mark.fast
def test_an_iris_no_darker_than_its_sclera_refuses_the_mesh_only_where_the_eyes_are_open():
    geometry = MeshGeometry(63.0, 32.0, 11.7)
    bright = np.array([[150.0, 140.0], [100.0, 90.0]])  # mesh on skin: the "iris" is as bright as the "sclera"
    assert mesh_refusal(geometry, bright, (0.1, 0.1), 11.7) == "iris_not_dark"
    one_real = np.array([[150.0, 140.0], [40.0, 110.0]])  # one eye in glare, the other a real eye
    assert mesh_refusal(geometry, one_real, (0.1, 0.1), 11.7) is None
    assert mesh_refusal(geometry, bright, (0.9, 0.9), 11.7) is None  # closed eyes show no iris: not judged
    assert mesh_refusal(geometry, bright, (0.2, 0.4), 11.7) == "iris_not_dark"  # only the clearly open eye judged
    assert mesh_refusal(geometry, None, (0.1, 0.1), 11.7) is None  # no image: only the lengths


@pytest.mark.fast
def test_the_pose_gate():
    assert pose_refusal(LIMITS.max_yaw_deg - 0.1, 0.0) is None
    assert pose_refusal(-LIMITS.max_yaw_deg - 0.1, 0.0) == "pose"
    assert pose_refusal(0.0, LIMITS.max_pitch_deg + 0.1) == "pose"
    assert set(gates.REASONS) == {"iris_not_dark", "ipd_implausible", "intercanthal_implausible", "pose"}


# ---- the real model on the registry samples -------------------------------------------------------------

@pytest.mark.timeout(120)
def test_the_misfit_mesh_of_multi_face_is_refused_with_its_reason(sample):
    """MediaPipe puts a mesh half a face too low on multi_face.jpg (eyes on the nose): no mm value, no
    angle is reported for it, and the summary counts the refusal."""
    row, res = measure_photo(rgb_of(sample("multi_face.jpg")))
    assert res.face
    assert row["gate_status"] == "ipd_implausible"
    assert all(math.isnan(row[c]) for c in MEASURES), [c for c in MEASURES if not math.isnan(row[c])]
    assert row["eye_status_left"] == row["eye_status_right"] == "ipd_implausible"
    summary = one_frame_summary(row, res.landmarks_px)
    assert summary["refused"] == {"ipd_implausible": 1}
    assert summary["asymmetry"]["static"] == {}


@pytest.mark.timeout(180)
def test_good_faces_are_never_refused(sample, clip):
    rows = clip[2]
    assert len(rows) == 72 and [r["gate_status"] for r in rows] == ["ok"] * 72
    row, _ = measure_photo(rgb_of(sample("single_face.jpg")))
    assert row["gate_status"] == "ok" and math.isfinite(row["intercanthal_mm"])


@pytest.mark.timeout(120)
def test_beyond_the_pose_gate_angles_and_the_weaker_side_are_withheld(clip):
    """single_face.mp4's first frame rendered turned by 55°: the model sees the head turned beyond the
    gate. The smile angles, every mm value and the weaker side are withheld; the head pose is reported."""
    rgb, res, _ = clip
    turned = synthetic.turn_head(rgb[0], res[0].landmarks_px, -55.0)
    row, tres = measure_photo(turned)
    assert abs(row["yaw_deg"]) > LIMITS.max_yaw_deg  # the render is beyond the gate
    assert row["gate_status"] == "pose" and row["eye_status_left"] == "pose"
    assert all(math.isnan(row[c]) for c in ANGLE_COLUMNS if c.startswith("smile_angle"))
    assert all(math.isnan(row[c]) for c in LENGTH_COLUMNS + AREA_COLUMNS)
    summary = one_frame_summary(row, tres.landmarks_px)
    assert summary["refused"] == {"pose": 1}
    assert summary["asymmetry"]["static"] == {}  # no weaker side named for any measure


@pytest.mark.timeout(180)
def test_with_the_lips_apart_the_mouth_corner_is_the_landmark_value(clip):
    """single_face.mp4: the person's lips are closed for the first frames, then apart (talking,
    smiling). Where they are apart the lip seam is not used: the flag is set and the commissure height
    is the landmark value; where they meet the seam refines it."""
    rgb, res, rows = clip
    closed = [r for r in rows[:16]]
    apart = [r for r in rows[24:70]]
    assert not any(r["lips_apart"] for r in closed) and all(r["lips_apart"] for r in apart)
    for r in apart:
        for s in ("left", "right"):
            assert not r[f"commissure_seam_{s}"]
            assert r[f"commissure_height_{s}_mm"] == r[f"commissure_height_raw_{s}_mm"]
    assert all(r["commissure_seam_left"] and r["commissure_seam_right"] for r in closed)
    # the kernel and its numpy reference agree on a frame with the lips apart
    got = mouth_corners(rgb[40], res[40].landmarks_px, res[40].matrix)
    np.testing.assert_allclose(got, reference.mouth_corners(rgb[40], res[40].landmarks_px, res[40].matrix),
                               equal_nan=True, rtol=1e-6, atol=1e-4)
    assert (got[:, MouthSlot.LIP_GAP] > MAX_LIP_GAP).all() and (got[:, MouthSlot.SEAM_COLUMNS] == 0).all()


@pytest.mark.timeout(120)
def test_eye_evidence_kernel_matches_its_reference_and_sees_real_eyes(clip, sample):
    rgb, res, _ = clip
    for f, r in ((rgb[0], res[0]), (rgb[40], res[40])):
        got = eye_evidence(f, r.landmarks_px)
        np.testing.assert_allclose(got, reference.eye_evidence(f, r.landmarks_px), rtol=1e-6, atol=1e-4)
        assert (got[:, 0] < 0.6 * got[:, 1]).all()  # the iris is far darker than the sclera beside it
    misfit = rgb_of(sample("multi_face.jpg"))
    with create_runner("mediapipe") as runner:
        lm = runner.infer(misfit, 1).landmarks_px
    np.testing.assert_allclose(eye_evidence(misfit, lm), reference.eye_evidence(misfit, lm), rtol=1e-6, atol=1e-4)
