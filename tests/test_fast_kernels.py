"""Every numba kernel against its plain-numpy reference and against known geometry, on a hand-made face
(tests/synthetic_face.py) and images drawn to match it: no model, no sample media."""

import numpy as np
import pytest
from synthetic_face import (
    EXPECTED,
    INNER_CORNER_X,
    LOWER_LID,
    SKIN,
    UPPER_LID,
    F,
    dental_show,
    draw,
    face,
    roll_image,
    rot,
)

from monitor.measures import face_model as L
from monitor.measures.frame import eye_state
from monitor.measures.kernels import (
    MEASURE_NAMES,
    eyelids,
    face_size,
    frame_measures,
    frame_measures_batch,
    head_angles,
    head_angles_batch,
    median5,
    mouth_corners,
    reference,
    theil_sen,
)
from monitor.measures.kernels._eyelid import (
    C_LOWER,
    C_UPPER,
    IN_FRAME,
    IRIS_SCORE,
    RADIUS,
    T_CENTRE,
    T_LOWER,
    T_LOWER_LM,
    T_UPPER,
    T_UPPER_LM,
)
from monitor.measures.kernels._mouth import HEIGHT_SHIFT, SEAM_COLUMNS, SEAM_CONTRAST, SEAM_SHIFT

pytestmark = pytest.mark.fast

IDX = {name: i for i, name in enumerate(MEASURE_NAMES)}
IMAGE_PLANE = [IDX["commissure_height_left"], IDX["commissure_height_right"]]  # measured in the image, not the head
HEAD_FRAME = [i for i in range(len(MEASURE_NAMES)) if i not in IMAGE_PLANE]


def random_rotations(n, seed):
    rng = np.random.default_rng(seed)
    return [rot(*a) for a in zip(rng.uniform(-40, 40, n), rng.uniform(-30, 30, n), rng.uniform(-60, 60, n))]


def turned(pts, r):
    """Landmarks of the face turned by the extra rotation r (OpenGL axes) about its centroid."""
    c = pts.mean(0)
    return (F @ r @ F @ (pts - c).T).T + c


# ---- frame_measures ------------------------------------------------------------------------------

def test_frame_measures_of_the_frontal_face_are_its_known_geometry():
    pts, m = face()
    got = dict(zip(MEASURE_NAMES, frame_measures(pts, m)))
    for name, value in got.items():
        stem = name.rsplit("_", 1)[0] if name.endswith(("_left", "_right")) else name
        want = dental_show(name.rsplit("_", 1)[1]) if stem == "dental_show" else EXPECTED[stem]
        assert value == pytest.approx(want, abs=1e-9), name
    assert got["dental_show_left"] == pytest.approx(2 * 1.0 * INNER_CORNER_X * 2 / 3, rel=0.05)  # ≈ a lens of gap 2


@pytest.mark.parametrize("seed", range(4))
def test_frame_measures_match_the_reference_under_any_pose(seed):
    rng = np.random.default_rng(seed)
    for r in random_rotations(5, seed):
        pts, m = face(r, seed=seed)
        pts = pts + rng.normal(0, 0.7, pts.shape)  # contours that are no longer tidy parabolas
        np.testing.assert_allclose(frame_measures(pts, m), reference.frame_measures(pts, m), rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("angles", [(20, -10, 5), (-35, 20, -40), (10, 28, 70), (-45, -5, 0)])
def test_measures_do_not_change_when_the_head_turns(angles):
    """The face turned by a known rotation, with that rotation given: head-frame measures unchanged."""
    pts, m = face()
    base = frame_measures(pts, m)
    r = rot(*angles)
    got = frame_measures(turned(pts, r), r)
    np.testing.assert_allclose(got[HEAD_FRAME], base[HEAD_FRAME], rtol=1e-9, atol=1e-9)
    # the commissure height is measured in the image plane: roll changes nothing, so with only the roll
    # of this rotation it is unchanged too
    rr = rot(0, 0, angles[2])
    np.testing.assert_allclose(frame_measures(turned(pts, rr), rr)[IMAGE_PLANE], base[IMAGE_PLANE], rtol=1e-9)


def test_the_wrong_rotation_does_change_the_measures():
    """The invariance above needs the rotation: given the identity instead, a turned face measures differently."""
    pts, m = face()
    r = rot(30, 0, 20)
    assert np.abs(frame_measures(turned(pts, r), m)[HEAD_FRAME] - frame_measures(pts, m)[HEAD_FRAME]).max() > 1.0


def test_a_lowered_lid_landmark_moves_only_its_own_eye():
    pts, m = face()
    base = frame_measures(pts, m)
    moved = pts.copy()
    moved[L.LEFT_UPPER_LID_CONTOUR[1:-1], 1] += 2.0  # 2 px down in the image: a lower left upper lid
    got = frame_measures(moved, m)
    diff = got - base
    assert diff[IDX["eye_aperture_left"]] == pytest.approx(-2.0) and diff[IDX["mrd1_left"]] == pytest.approx(-2.0)
    unchanged = [i for i in range(len(MEASURE_NAMES)) if i not in (IDX["eye_aperture_left"], IDX["mrd1_left"])]
    np.testing.assert_allclose(got[unchanged], base[unchanged], atol=1e-9)


def test_a_drooping_mouth_corner_raises_its_commissure_height():
    pts, m = face(rot(0, 0, 12))
    base = frame_measures(pts, m)
    moved = pts.copy()
    roll = np.radians(12)
    moved[L.RIGHT_MOUTH_CORNER, :2] += 3.0 * np.array([np.sin(roll), np.cos(roll)])  # 3 px along the head's down axis
    got = frame_measures(moved, m)
    assert got[IDX["commissure_height_right"]] - base[IDX["commissure_height_right"]] == pytest.approx(3.0)
    assert got[IDX["commissure_height_left"]] == pytest.approx(base[IDX["commissure_height_left"]])
    assert got[IDX["smile_angle_right"]] < base[IDX["smile_angle_right"]]  # the corner is lower: a smaller angle


def test_a_pupil_outside_its_eye_gives_nan_not_a_number():
    pts, m = face()
    moved = pts.copy()
    moved[L.LEFT_IRIS_CENTER] = pts[L.LEFT_EYE_OUTER] + (pts[L.LEFT_EYE_OUTER] - pts[L.LEFT_EYE_INNER])
    out = frame_measures(moved, m)
    assert np.isnan(out[[IDX["eye_aperture_left"], IDX["mrd1_left"], IDX["brow_height_left"]]]).all()
    assert np.isfinite(out[[IDX["eye_aperture_right"], IDX["mrd1_right"], IDX["brow_height_right"]]]).all()
    np.testing.assert_allclose(out, reference.frame_measures(moved, m), equal_nan=True, atol=1e-9)


def test_batch_equals_one_frame_at_a_time():
    rots = random_rotations(6, 11)
    frames = [face(r, seed=i) for i, r in enumerate(rots)]
    pts = np.stack([p for p, _ in frames])
    mats = np.stack([m for _, m in frames])
    batch = frame_measures_batch(pts, mats)
    assert batch.shape == (6, len(MEASURE_NAMES))
    for i, (p, m) in enumerate(frames):
        np.testing.assert_allclose(batch[i], frame_measures(p, m), rtol=0, atol=0)
    assert not np.allclose(batch[0], batch[1])  # different faces, different rows


def test_inputs_in_other_dtypes_and_layouts_give_the_same_measures():
    pts, m = face(rot(10, 5, -8))
    want = frame_measures(pts, m)
    np.testing.assert_allclose(frame_measures(pts, m[:3, :3]), want)  # 3×3 as 4×4
    np.testing.assert_allclose(frame_measures(np.asfortranarray(pts), m), want)
    np.testing.assert_allclose(frame_measures(pts.astype(np.float32), m.astype(np.float32)), want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(frame_measures(np.round(pts).astype(np.int32), m),
                               frame_measures(np.round(pts), m))


# ---- head pose -------------------------------------------------------------------------------------

@pytest.mark.parametrize("angles", [(0, 0, 0), (25, 0, 0), (0, -20, 0), (0, 0, 33), (-35, 20, -60), (70, -15, 120)])
def test_head_angles_recover_a_known_rotation(angles):
    r = rot(*angles)
    np.testing.assert_allclose(head_angles(r), angles, atol=1e-9)
    np.testing.assert_allclose(head_angles(r), reference.head_angles(r), atol=1e-9)
    m = np.eye(4)
    m[:3, :3] = r
    np.testing.assert_allclose(head_angles(m), angles, atol=1e-9)


def test_head_angles_batch_and_signs():
    rng = np.random.default_rng(5)
    angles = np.c_[rng.uniform(-80, 80, 20), rng.uniform(-80, 80, 20), rng.uniform(-170, 170, 20)]
    got = head_angles_batch(np.stack([rot(*a) for a in angles]))
    np.testing.assert_allclose(got, angles, atol=1e-8)
    # the project's signs: the face turned toward the patient's left and chin up are positive
    pts, _ = face(rot(20, 0, 0))
    assert pts[L.LEFT_EYE_OUTER, 2] > pts[L.RIGHT_EYE_OUTER, 2]  # left side turned away from the camera
    pts, _ = face(rot(0, 0, 15))
    assert pts[L.LEFT_IRIS_CENTER, 1] < pts[L.RIGHT_IRIS_CENTER, 1]  # roll > 0: the left eye higher in the image


# ---- face size --------------------------------------------------------------------------------------

def test_face_size_matches_reference_and_ignores_rotation_but_not_scale():
    pts, _ = face()
    size = face_size(pts)
    assert size == pytest.approx(reference.face_size(pts), rel=1e-12) and size > 10
    assert face_size(turned(pts, rot(30, -20, 45))) == pytest.approx(size, rel=1e-12)
    assert face_size(2.0 * pts) == pytest.approx(2.0 * size, rel=1e-12)
    assert face_size(pts + 50.0) == pytest.approx(size, rel=1e-12)


# ---- eyelids: image refinement -------------------------------------------------------------------

@pytest.mark.parametrize("upper, lower, iris_dy", [
    ((UPPER_LID, UPPER_LID), (LOWER_LID, LOWER_LID), (0.0, 0.0)),  # the lids where the landmarks are
    ((4.0, UPPER_LID), (LOWER_LID, LOWER_LID), (0.0, 0.0)),  # a left ptosis the landmarks miss
    ((5.5, 6.0), (8.0, 8.5), (1.5, -0.8)),  # both eyes moved, irises off their landmark centre
])
def test_eyelids_find_the_margins_and_iris_planted_in_the_image(upper, lower, iris_dy):
    pts, m = face()
    img = draw(upper=upper, lower=lower, iris_shift=((0.0, iris_dy[0]), (0.0, iris_dy[1])))
    got = eyelids(img, pts, m)
    np.testing.assert_allclose(got, reference.eyelids(img, pts, m), rtol=1e-6, atol=1e-4)
    for side in range(2):
        eye = got[side]
        assert eye[T_UPPER] == pytest.approx(-upper[side], abs=0.15)
        assert eye[T_LOWER] == pytest.approx(lower[side], abs=0.15)
        assert eye[T_CENTRE] == pytest.approx(iris_dy[side], abs=0.15)
        assert eye[T_UPPER_LM] == pytest.approx(-UPPER_LID) and eye[T_LOWER_LM] == pytest.approx(LOWER_LID)
        assert eye[IN_FRAME] == 1.0 and eye[RADIUS] == pytest.approx(10.0)
        assert eye[C_UPPER] > 0.4 and eye[C_LOWER] > 0.4 and eye[IRIS_SCORE] > 50  # strong drawn edges


@pytest.mark.parametrize("degrees", [12.0, -25.0])
def test_eyelids_measure_along_the_head_axis_when_the_head_rolls(degrees):
    pts, m = face(rot(0, 0, degrees))
    img = roll_image(draw(upper=(4.0, UPPER_LID), iris_shift=((0.0, 1.2), (0.0, 0.0))), degrees)
    got = eyelids(img, pts, m)
    np.testing.assert_allclose(got, reference.eyelids(img, pts, m), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(got[:, [T_UPPER, T_LOWER, T_CENTRE]],
                               [[-4.0, LOWER_LID, 1.2], [-UPPER_LID, LOWER_LID, 0.0]], atol=0.2)


def test_eyelids_match_the_reference_for_any_rotation_given():
    img = draw(upper=(5.0, 6.5))
    pts, _ = face()
    for r in random_rotations(4, 3):
        np.testing.assert_allclose(eyelids(img, pts, r), reference.eyelids(img, pts, r), rtol=1e-6, atol=1e-4)


def test_an_eye_cut_off_by_the_image_edge_is_not_measured():
    pts, m = face()
    img = draw()
    cut = int(pts[L.LEFT_IRIS_CENTER, 0]) + 2  # the frame ends just past the left pupil
    got = eyelids(np.ascontiguousarray(img[:, :cut]), pts, m)
    np.testing.assert_allclose(got, reference.eyelids(np.ascontiguousarray(img[:, :cut]), pts, m), equal_nan=True,
                               rtol=1e-6, atol=1e-4)
    assert got[0, IN_FRAME] < 1.0 and np.isnan(got[0, [T_UPPER, T_LOWER, T_CENTRE]]).all()
    assert got[1, IN_FRAME] == 1.0 and np.isfinite(got[1, [T_UPPER, T_LOWER, T_CENTRE]]).all()


def test_a_covered_eye_has_only_noise_for_margins():
    """Skin (with sensor noise) over the left eye: whatever edges the search finds have no contrast, and
    eye_state refuses them; a flat patch has no edge at all."""
    pts, m = face()
    x = int(pts[L.LEFT_IRIS_CENTER, 0])
    img = draw(noise=0)
    img[140:200, x - 40:x + 40] = SKIN
    assert np.isnan(eyelids(img, pts, m)[0, [T_UPPER, T_LOWER, T_CENTRE]]).all()
    noisy = np.clip(img + np.random.default_rng(1).normal(0, 1.5, img.shape), 0, 255).astype(np.uint8)
    got = eyelids(noisy, pts, m)
    np.testing.assert_allclose(got, reference.eyelids(noisy, pts, m), rtol=1e-6, atol=1e-4)
    assert got[0, C_UPPER] < 0.02 and got[0, C_LOWER] < 0.02 and got[0, IRIS_SCORE] < 5
    assert eye_state(got[0], 0.0, 0.0, 0.0)[0] == "low_contrast"
    assert eye_state(got[1], 0.0, 0.0, 0.0)[0] == "ok" and got[1, C_UPPER] > 0.4


def test_eyelids_without_a_usable_down_axis_are_nan():
    pts, _ = face()
    edge_on = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # the head's up axis points at the camera
    # (reference.eyelids has no such guard: it divides by zero and reports the radius and IN_FRAME 0)
    assert np.isnan(eyelids(draw(), pts, edge_on)).all() and np.isnan(mouth_corners(draw(), pts, edge_on)).all()
    assert np.isnan(reference.mouth_corners(draw(), pts, edge_on)).all()


# ---- mouth corners: image refinement --------------------------------------------------------------

@pytest.mark.parametrize("shift", [(3.0, 0.0), (0.0, -2.0), (1.5, 2.5)])
def test_mouth_corners_find_the_planted_lip_seam(shift):
    pts, m = face()
    img = draw(seam_shift=shift)
    got = mouth_corners(img, pts, m)
    np.testing.assert_allclose(got, reference.mouth_corners(img, pts, m), rtol=1e-6, atol=1e-4)
    for side in range(2):
        assert got[side, SEAM_COLUMNS] == 7 and got[side, SEAM_CONTRAST] > 0.3
        assert got[side, SEAM_SHIFT] == pytest.approx(shift[side], abs=0.15)
        assert got[side, HEIGHT_SHIFT] == pytest.approx(got[side, SEAM_SHIFT])  # frontal: the image is the head


@pytest.mark.parametrize("degrees", [15.0, -20.0])
def test_mouth_corners_when_the_head_rolls(degrees):
    pts, m = face(rot(0, 0, degrees))
    img = roll_image(draw(seam_shift=(3.0, 0.0)), degrees)
    got = mouth_corners(img, pts, m)
    np.testing.assert_allclose(got, reference.mouth_corners(img, pts, m), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(got[:, HEIGHT_SHIFT], [3.0, 0.0], atol=0.2)


def test_an_open_mouth_or_a_tiny_one_has_no_seam():
    pts, m = face()
    img = draw()
    opened = pts.copy()
    for contour, sign in ((L.LEFT_UPPER_SEAM, -1), (L.RIGHT_UPPER_SEAM, -1), (L.LEFT_LOWER_SEAM, 1),
                          (L.RIGHT_LOWER_SEAM, 1)):
        inner = contour[:-2]  # keep the corners: the lips part between them
        opened[inner, 1] = pts[inner, 1] + sign * 20.0
    got = mouth_corners(img, opened, m)
    np.testing.assert_allclose(got, reference.mouth_corners(img, opened, m), equal_nan=True, rtol=1e-6, atol=1e-4)
    assert (got[:, SEAM_COLUMNS] < 4).all() and np.isnan(got[:, HEIGHT_SHIFT]).all()
    tiny = pts.copy()
    tiny[[L.LEFT_MOUTH_CORNER, L.RIGHT_MOUTH_CORNER], :2] = pts[L.UPPER_LIP_INNER_MID, :2] + [[1.5, 0], [-1.5, 0]]
    assert np.isnan(mouth_corners(img, tiny, m)).all() and np.isnan(reference.mouth_corners(img, tiny, m)).all()


# ---- running median and trend --------------------------------------------------------------------

def test_median5_matches_the_reference_with_nan_runs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    x[rng.choice(300, 60, replace=False)] = np.nan
    x[100:106] = np.nan  # a run longer than the window
    got = median5(x)
    np.testing.assert_allclose(got, reference.median_filter(x), equal_nan=True)
    assert np.isnan(got[102:104]).all()  # windows with nothing finite
    np.testing.assert_array_equal(median5([5.0, np.nan, 1.0, np.nan, 3.0, 100.0]), [3, 3, 3, 3, 3, 51.5])
    assert median5(np.array([], float)).shape == (0,)


def test_theil_sen_matches_the_reference_with_nans_and_ties():
    rng = np.random.default_rng(8)
    t = np.sort(rng.uniform(0, 30, 80))
    t[10:13] = t[10]  # repeated times: pairs with dt = 0 are skipped
    y = 2.0 - 0.3 * t + rng.normal(0, 0.2, 80)
    y[rng.choice(80, 12, replace=False)] = np.nan
    t[5] = np.nan
    assert theil_sen(t, y) == pytest.approx(reference.theil_sen(t, y), rel=1e-12)
    assert theil_sen(t, y) == pytest.approx(-0.3, abs=0.03)
    assert theil_sen(np.arange(5.0), [1.0, 3.0, 5.0, 7.0, 100.0]) == pytest.approx(2.0)  # one outlier ignored
    assert np.isnan(theil_sen([1.0, 2.0], [np.nan, 3.0])) and np.isnan(theil_sen([1.0, 1.0], [2.0, 3.0]))


# ---- the wrappers explain a wrong call --------------------------------------------------------------

_PTS = np.zeros((478, 3))
_IMG = np.zeros((8, 8, 3), np.uint8)


@pytest.mark.parametrize("call, error, message", [
    (lambda: frame_measures(np.zeros((468, 3)), np.eye(3)), ValueError, r"landmarks_px must have shape \(478, 3\), got \(468, 3\)"),
    (lambda: frame_measures(_PTS, np.eye(2)), ValueError, r"rotation must have shape \(3, 3\), got \(2, 2\)"),
    (lambda: frame_measures(np.full((478, 3), "a"), np.eye(3)), TypeError, "landmarks_px must be numeric, got dtype <U1"),
    (lambda: frame_measures(_PTS, np.eye(3, dtype=complex)), TypeError, "rotation must be numeric, got dtype complex128"),
    (lambda: frame_measures_batch(_PTS, np.eye(3)), ValueError, r"\(N, 478, 3\), got \(478, 3\); pass one frame to the unbatched"),
    (lambda: frame_measures_batch(np.zeros((2, 478, 3)), np.stack([np.eye(3)] * 3)), ValueError, "2 landmark frames but 3 rotations"),
    (lambda: head_angles(np.eye(2)), ValueError, r"rotation must have shape \(3, 3\)"),
    (lambda: head_angles_batch(np.eye(3)), ValueError, r"rotations must have shape \(N, 3, 3\)"),
    (lambda: eyelids(_IMG.astype(np.float32), _PTS, np.eye(3)), ValueError, "image_rgb must be an \\(H, W, 3\\) uint8 RGB image, got float32"),
    (lambda: eyelids(np.zeros((8, 8), np.uint8), _PTS, np.eye(3)), ValueError, r"uint8 RGB image, got uint8 \(8, 8\)"),
    (lambda: mouth_corners(np.zeros((1, 8, 3), np.uint8), _PTS, np.eye(3)), ValueError, "image_rgb is too small"),
    (lambda: mouth_corners(_IMG, _PTS[:10], np.eye(3)), ValueError, r"landmarks_px must have shape \(478, 3\)"),
    (lambda: face_size(_PTS.T), ValueError, r"landmarks_px must have shape \(478, 3\), got \(3, 478\)"),
    (lambda: median5(np.zeros((2, 2))), ValueError, r"median5 takes a 1-D series, got shape \(2, 2\)"),
    (lambda: theil_sen(np.arange(3.0), np.arange(4.0)), ValueError, r"two 1-D arrays of one length, got \(3,\) and \(4,\)"),
])
def test_wrappers_explain_bad_calls(call, error, message):
    with pytest.raises(error, match=message):
        call()
