import numpy as np
import pytest

from calibration.scale import IrisScale
from monitor.measures.kernels import (
    frame_measures,
    frame_measures_batch,
    head_angles,
    head_angles_batch,
    median5,
    reference,
)
from monitor.measures.kernels._measures import N_OUT


def rot(yaw, pitch, roll):
    """A rotation in the landmarker's OpenGL axes from angles in the project's sign convention."""
    y, p, r = np.radians([yaw, -pitch, roll])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return rz @ ry @ rx


@pytest.fixture(scope="module")
def real_face(sample_frames):
    """Landmarks and matrix from the real model on the first sample frame."""
    import cv2

    from engines import create_runner

    with create_runner("mediapipe") as r:
        res = r.infer(cv2.cvtColor(sample_frames[0], cv2.COLOR_BGR2RGB), 0)
    return res.landmarks_px.astype(np.float64), res.matrix.astype(np.float64)


def test_kernel_matches_numpy_reference_on_a_real_face(real_face):
    pts, m = real_face
    got = frame_measures(pts, m)
    want = reference.frame_measures(pts, m)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)
    assert np.all(np.isfinite(got))
    # plausible geometry in pixels: open eyes, brows above pupils, mouth corners below the eyes
    assert (got[0:2] > 0).all() and (got[4:6] > got[2:4]).all() and (got[6:8] > 0).all()


@pytest.mark.parametrize("angles", [(0, 0, 0), (20, -10, 5), (-30, 15, -12), (5, 25, 40)])
def test_kernel_matches_reference_under_rotation(real_face, angles):
    pts, _ = real_face
    r = rot(*angles)
    np.testing.assert_allclose(frame_measures(pts, r), reference.frame_measures(pts, r), rtol=1e-10, atol=1e-9)


def test_measures_invariant_to_head_rotation(real_face):
    """Rotating the face and giving the kernel the same rotation leaves the measures unchanged."""
    pts, m = real_face
    base = frame_measures(pts, m)
    r_extra = rot(15, -8, 20)
    F = np.diag([1.0, -1, -1])
    c = pts.mean(0)
    rotated = (F @ r_extra @ F @ (pts - c).T).T + c
    got = frame_measures(rotated, r_extra @ m[:3, :3])
    head_frame = np.r_[0:6, 8:N_OUT]  # commissure height (6, 7) is measured in the image plane
    np.testing.assert_allclose(got[head_frame], base[head_frame], rtol=1e-9, atol=1e-9)


def test_commissure_height_is_invariant_to_head_roll(real_face):
    """Tilt-corrected along the canthal line: rolling the face in the image plane changes nothing."""
    pts, m = real_face
    base = frame_measures(pts, m)
    r_roll = rot(0, 0, 25)
    F = np.diag([1.0, -1, -1])
    c = pts.mean(0)
    rolled = (F @ r_roll @ F @ (pts - c).T).T + c
    np.testing.assert_allclose(frame_measures(rolled, r_roll @ m[:3, :3])[6:8], base[6:8], rtol=1e-9)


def test_batch_equals_single(real_face):
    pts, m = real_face
    batch = frame_measures_batch(np.stack([pts, pts * 1.1]), np.stack([m, m]))
    np.testing.assert_allclose(batch[0], frame_measures(pts, m))
    np.testing.assert_allclose(batch[1], frame_measures(pts * 1.1, m))


@pytest.mark.fast
@pytest.mark.parametrize("angles", [(0, 0, 0), (20, -10, 5), (-35, 20, -60), (80, 0, 0)])
def test_head_angles_recover_known_rotation(angles):
    np.testing.assert_allclose(head_angles(rot(*angles)), angles, atol=1e-9)
    np.testing.assert_allclose(head_angles(rot(*angles)), reference.head_angles(rot(*angles)), atol=1e-9)
    np.testing.assert_allclose(head_angles_batch(np.stack([rot(*angles)]))[0], angles, atol=1e-9)


def test_pupil_outside_eye_gives_nan_not_a_number(real_face):
    pts, m = real_face
    moved = pts.copy()
    moved[473] = moved[263] + (moved[263] - moved[362])  # left iris far beyond the outer corner
    out = frame_measures(moved, m)
    assert np.isnan(out[0]) and np.isnan(out[2]) and np.isnan(out[4])
    assert np.isfinite(out[1])


@pytest.mark.fast
def test_median5_matches_reference_with_nans():
    x = np.random.default_rng(3).normal(size=200)
    x[[0, 7, 8, 9, 50]] = np.nan
    np.testing.assert_allclose(median5(x), reference.median_filter(x), equal_nan=True)
    assert np.isnan(median5(np.full(4, np.nan))).all()
    np.testing.assert_array_equal(median5([1, 100, 2, 3, 4]), [2, 2.5, 3, 3.5, 3])


@pytest.mark.fast
@pytest.mark.parametrize("call, message", [
    (lambda: frame_measures(np.zeros((468, 3)), np.eye(3)), r"must have shape \(478, 3\)"),
    (lambda: frame_measures(np.zeros((478, 3)), np.eye(2)), r"must have shape \(3, 3\)"),
    (lambda: frame_measures(np.array([["a"] * 3] * 478), np.eye(3)), "must be numeric"),
    (lambda: frame_measures_batch(np.zeros((478, 3)), np.eye(3)), "pass one frame to the unbatched"),
    (lambda: frame_measures_batch(np.zeros((2, 478, 3)), np.stack([np.eye(3)] * 3)), "2 landmark frames but 3"),
    (lambda: median5(np.zeros((2, 2))), "1-D"),
])
def test_wrappers_explain_bad_calls(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.fast
def test_iris_scale_is_a_robust_running_median():
    s = IrisScale(window=5)
    assert np.isnan(s.mm_per_px)
    for d in (10, 10, 10, 40, 10):  # one outlier frame
        s.update(d, d, 0.0)
    assert s.mm_per_px == pytest.approx(11.7 / 10)
    s.update(100, 100, 60.0)  # turned too far: ignored
    assert s.mm_per_px == pytest.approx(11.7 / 10)
    assert IrisScale(iris_mm=12.5, window=1).update(10, np.nan, 0) == pytest.approx(1.25)
    with pytest.raises(ValueError, match="not plausible"):
        IrisScale(iris_mm=50)


@pytest.mark.fast
def test_iris_scale_locks_to_the_face_size_and_then_ignores_the_iris():
    s = IrisScale(window=5)
    for d in (10, 10, 11, 9, 10):  # iris 10 px on a face of rigid size 100 px
        s.update(d, d, 0.0, 100.0)
    assert s.locked and s.mm_per_px == pytest.approx(11.7 / 10)
    assert s.update(10.3, 10.3, 0.0, 100.0) == pytest.approx(11.7 / 10)  # the model's iris wobbles: no change
    assert s.update(20, 20, 0.0, 200.0) == pytest.approx(11.7 / 20)  # the head comes twice as near
    assert s.update(20, 20, 0.0, float("nan")) == pytest.approx(11.7 / 20)  # no size: the last scale stands
    t = IrisScale(window=3)
    t.update(10, 10, 40.0, 100.0)  # turned: does not calibrate
    assert not t.locked and np.isnan(t.mm_per_px)
