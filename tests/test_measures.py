"""Issue 3's measures on the real model and real frames: lid refinement against planted ground truth,
its numpy reference, bad-input statuses, fatigue curves, asymmetry, expression, palsy estimates."""

import math

import cv2
import numpy as np
import pytest

from calibration.scale import IrisScale
from engines import BLENDSHAPE_NAMES, create_runner
from monitor.lab import synthetic
from monitor.measures import face_model as L
from monitor.measures.asymmetry import compare, static_asymmetry
from monitor.measures.expression import action_units, emotions, expression_strength
from monitor.measures.fatigue import FatigueTracker, fatigue_curve
from monitor.measures.frame import compute_measures, eye_state
from monitor.measures.kernels import eyelids, face_size, mouth_corners, reference, theil_sen
from monitor.measures.palsy import eface, house_brackmann
from monitor.measures.summary import count_blinks, summarize
from monitor.store.series import build_table


@pytest.fixture(scope="module")
def faces(sample_frames):
    """RGB frames 0–7 of the sample clip with the model's landmarks (a neutral, still face)."""
    rgb = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in sample_frames[:8]]
    with create_runner("mediapipe") as r:
        res = [r.infer(f, i * 33 + 1) for i, f in enumerate(rgb)]
    return rgb, res


def measure(frames):
    scale = IrisScale()
    with create_runner("mediapipe") as r:
        return [compute_measures(r.infer(f, i * 33 + 1), scale, f) for i, f in enumerate(frames)]


def med(rows, key):
    return float(np.nanmedian([r[key] for r in rows]))


def test_eyelid_kernel_matches_numpy_reference(faces):
    rgb, res = faces
    for f, r in zip(rgb[:3], res[:3]):
        np.testing.assert_allclose(eyelids(f, r.landmarks_px, r.matrix), reference.eyelids(f, r.landmarks_px, r.matrix),
                                   rtol=1e-6, atol=1e-4)
    rot = np.asarray(cv2.Rodrigues(np.array([0.1, -0.2, 0.15]))[0])  # any head pose
    np.testing.assert_allclose(eyelids(rgb[0], res[0].landmarks_px, rot), reference.eyelids(rgb[0], res[0].landmarks_px, rot),
                               rtol=1e-6, atol=1e-4)


def test_mouth_kernel_and_face_size_match_numpy_reference(faces):
    rgb, res = faces
    rot = np.asarray(cv2.Rodrigues(np.array([0.1, -0.2, 0.15]))[0])
    for f, r, m in ((rgb[0], res[0], res[0].matrix), (rgb[1], res[1], res[1].matrix), (rgb[0], res[0], rot)):
        got = mouth_corners(f, r.landmarks_px, m)
        np.testing.assert_allclose(got, reference.mouth_corners(f, r.landmarks_px, m), rtol=1e-6, atol=1e-4)
    assert (mouth_corners(rgb[0], res[0].landmarks_px, res[0].matrix)[:, 2] >= 4).all()  # closed lips: a seam
    assert face_size(res[0].landmarks_px) == pytest.approx(reference.face_size(res[0].landmarks_px))


def test_commissure_height_follows_a_planted_mouth_droop(faces):
    rgb, res = faces
    planted_px = 4.0
    base = measure(rgb)
    warped = measure([synthetic.lower_mouth_corner(f, r.landmarks_px, "right", planted_px) for f, r in zip(rgb, res)])
    planted_mm = planted_px * med(base, "mm_per_px")
    got = {k: (med(warped, k) - med(base, k)) / planted_mm
           for k in ("commissure_height_right_mm", "commissure_height_raw_right_mm")}
    assert got["commissure_height_right_mm"] > 0.8, got
    assert got["commissure_height_right_mm"] > got["commissure_height_raw_right_mm"] + 0.05, got
    assert abs(med(warped, "commissure_height_left_mm") - med(base, "commissure_height_left_mm")) < 0.5
    assert all(r["commissure_seam_right"] for r in warped)


def test_lid_measures_follow_a_planted_ptosis_that_raw_landmarks_miss(faces):
    rgb, res = faces
    base = measure(rgb)
    planted_px = [0.3 * synthetic.fissure_px(r.landmarks_px, "left") for r in res]
    warped = measure([synthetic.lower_upper_lid(f, r.landmarks_px, "left", d) for f, r, d in zip(rgb, res, planted_px)])
    planted_mm = np.median(planted_px) * med(base, "mm_per_px")
    got = {k: (med(base, k) - med(warped, k)) / planted_mm
           for k in ("eye_aperture_left_mm", "mrd1_left_mm", "eye_aperture_raw_left_mm", "mrd1_raw_left_mm")}
    assert got["eye_aperture_left_mm"] > 0.8 and got["mrd1_left_mm"] > 0.8, got
    assert got["mrd1_raw_left_mm"] < 0.5, got  # the reason the refinement exists
    assert abs(med(warped, "eye_aperture_right_mm") - med(base, "eye_aperture_right_mm")) < 0.3
    asym = static_asymmetry({k: med(warped, k) for k in warped[0] if k.endswith("_mm")})
    assert asym["eye_aperture_mm"]["weaker_side"] == "left" and asym["mrd1_mm"]["weaker_side"] == "left"


def test_a_covered_eye_gives_nan_and_a_reason(faces):
    rgb, res = faces
    lm = res[0].landmarks_px
    img = rgb[0].copy()
    x0, x1 = sorted(int(v) for v in (lm[L.LEFT_EYE_INNER, 0] - 8, lm[L.LEFT_EYE_OUTER, 0] + 8))
    y = int(lm[L.LEFT_IRIS_CENTER, 1])
    img[y - 14:y + 14, x0:x1] = img[y + 30, (x0 + x1) // 2]  # a skin-coloured patch (a finger) over the eye
    rows = measure([img] * 3)
    assert all(r["eye_status_left"] in ("low_contrast", "closed") for r in rows)
    assert all(math.isnan(r["eye_aperture_left_mm"]) and math.isnan(r["mrd1_left_mm"]) for r in rows)
    assert all(r["eye_status_right"] == "ok" and r["eye_aperture_right_mm"] > 3 for r in rows)


def test_an_eye_at_the_image_edge_is_out_of_frame(faces):
    rgb, res = faces
    lm = res[0].landmarks_px
    cut = int(lm[L.LEFT_IRIS_CENTER, 0]) + 2  # the frame ends just past the left pupil
    rows = measure([np.ascontiguousarray(f[:, :cut]) for f in rgb[:3]])
    face_rows = [r for r in rows if r["eye_status_left"] != "no_face"]
    assert face_rows and all(r["eye_status_left"] == "out_of_frame" and math.isnan(r["mrd1_left_mm"]) for r in face_rows)


@pytest.mark.parametrize("blink, yaw, pitch, want", [
    (0.9, 0, 0, "closed"), (0.0, 45, 0, "pose"), (0.0, 0, -35, "pose"), (0.0, 5, 5, "ok")])
def test_eye_state_reasons(faces, blink, yaw, pitch, want):
    rgb, res = faces
    eye = eyelids(rgb[0], res[0].landmarks_px, res[0].matrix)[0]
    status, conf = eye_state(eye, blink, yaw, pitch)
    assert status == want and (conf > 0.4 if want == "ok" else conf == 0.0)


@pytest.mark.fast
def test_theil_sen_matches_reference_and_ignores_outliers():
    rng = np.random.default_rng(1)
    t = np.arange(60.0)
    y = 5 - 0.1 * t + rng.normal(0, 0.05, 60)
    y[[3, 40]] = [50, -50]
    y[10] = np.nan
    assert theil_sen(t, y) == pytest.approx(reference.theil_sen(t, y))
    assert theil_sen(t, y) == pytest.approx(-0.1, abs=0.01)
    assert math.isnan(theil_sen([0.0], [1.0]))


@pytest.mark.fast
def test_fatigue_curve_of_a_planted_decline_with_blinks():
    fps = 30
    t = np.arange(0, 30, 1 / fps)
    mrd1 = np.where(t < 10, 4.0, 4.0 - 0.2 * (t - 10))  # 4 mm, then −12 mm/min from 10 s
    closed = np.zeros(t.size, bool)
    for b in (5.0, 15.0, 25.0):  # three blinks of 0.2 s, during which the value collapses
        i = (t >= b) & (t < b + 0.2)
        closed[i] = True
        mrd1[i] = 0.0
    c = fatigue_curve(t, mrd1, closed)
    assert c.baseline_mm == pytest.approx(4.0, abs=0.01)
    assert c.end_mm == pytest.approx(4.0 - 0.2 * 18.5, abs=0.15)
    assert c.drop_mm == pytest.approx(3.7, abs=0.15) and c.drop_pct == pytest.approx(92.5, abs=4)
    assert c.time_to_drop_s == pytest.approx(20.0, abs=0.6)  # 2 mm below baseline from t = 20 s
    assert c.frames_closed == 18  # blinks never enter the curve: the bins holding them keep the true value
    bins = dict(zip(c.bin_t_s, c.bin_mm))
    assert bins[5.25] == pytest.approx(4.0) and bins[15.25] == pytest.approx(4.0 - 0.2 * 5.25, abs=0.1)
    assert -12 < c.slope_mm_per_min < -5
    # the incremental form gives the same figures, frame by frame
    tr = FatigueTracker()
    for ti, v, cl in zip(t, mrd1, closed):
        tr.update(ti, v, cl)
    assert tr.curve() == c
    with pytest.raises(ValueError, match="backwards"):
        tr.update(1.0, 3.0)


@pytest.mark.fast
def test_no_sustained_drop_means_none():
    t = np.arange(0, 20, 1 / 30)
    assert fatigue_curve(t, 4 + 0.01 * np.sin(t)).time_to_drop_s is None


@pytest.mark.fast
def test_blinks_are_short_closures_of_both_eyes():
    t = np.arange(100) / 30
    left = np.zeros(100, bool)
    right = np.zeros(100, bool)
    left[10:14] = right[10:14] = True  # a blink
    left[30:34] = True  # a wink: not a blink
    left[50:95] = right[50:95] = True  # 1.5 s: eyes closed, not a blink
    assert count_blinks(t, left, right) == 1


@pytest.mark.fast
def test_asymmetry_names_the_weaker_side():
    assert compare(8.0, 10.0, True, 0.5)["weaker_side"] == "left"
    assert compare(60.0, 57.0, False, 1.0)["weaker_side"] == "left"  # the lower corner droops
    c = compare(10.0, 9.8, True, 0.5)
    assert c["weaker_side"] == "neither" and c["abs_diff"] == pytest.approx(0.2)
    assert compare(8.0, 10.0, True, 0.5)["diff_pct_of_stronger"] == pytest.approx(20.0)


@pytest.mark.fast
def test_emotions_are_means_of_their_prototype_units():
    b = np.zeros((3, 52))
    b[:, BLENDSHAPE_NAMES.index("cheekSquintLeft")] = 0.8
    b[:, BLENDSHAPE_NAMES.index("mouthSmileLeft")] = 0.6
    emo = emotions(action_units(b))
    assert emo["happiness_left"][0] == pytest.approx(0.7) and emo["happiness_right"][0] == 0
    s = expression_strength(b, "happiness")
    assert s["action_units_p95"]["AU12"]["left_minus_right"] == pytest.approx(0.6)
    assert s["emotions_p95"]["happiness"]["both"] == pytest.approx(0.35)


def _medians(brow, ap, exc):
    return {"brow_height_left_mm": brow[0], "brow_height_right_mm": brow[1],
            "eye_aperture_left_mm": ap[0], "eye_aperture_right_mm": ap[1],
            "eye_aperture_raw_left_mm": ap[0], "eye_aperture_raw_right_mm": ap[1],
            "commissure_excursion_left_mm": exc[0], "commissure_excursion_right_mm": exc[1]}


@pytest.mark.fast
def test_eface_and_house_brackmann_estimates():
    rest = _medians((25, 25), (9, 9), (25, 25))
    healthy = {"neutral": rest, "raising_eyebrows": _medians((30, 30), (10, 10), (25, 25)),
               "eyes_closed_firmly": _medians((24, 24), (0.5, 0.5), (26, 26)),
               "showing_teeth": _medians((25, 25), (7, 7), (32, 32))}
    g = eface(healthy)
    assert g["dynamic"] == pytest.approx(100) and g["static"] == pytest.approx(100)
    assert house_brackmann(g)["grade"] == 1
    # left side: half the brow lift, incomplete closure, a third of the smile
    palsy = {"neutral": rest, "raising_eyebrows": _medians((27.5, 30), (10, 10), (25, 25)),
             "eyes_closed_firmly": _medians((24, 24), (4.5, 0.5), (26, 26)),
             "showing_teeth": _medians((25, 25), (7, 7), (27.33, 32))}
    g = eface(palsy)
    assert g["items"]["dynamic:brow_elevation"] == pytest.approx(50)
    assert g["items"]["dynamic:full_eye_closure"] == pytest.approx(100 * 4.5 / 8.5, abs=0.1)
    hb = house_brackmann(g)
    assert hb["grade"] == 4 and hb["roman"] == "IV"
    assert eface({"raising_eyebrows": rest}) is None  # no neutral step, no grade


@pytest.mark.fast
def test_summary_per_step_with_a_person_baseline():
    rows, lms = [], []
    for i in range(60):
        step = "neutral" if i < 30 else "raising_eyebrows"
        lift = 0 if i < 30 else 5
        rows.append({"frame": i, "t_s": i / 30, "face": True, "faces": 1, "step": step,
                     "brow_height_left_mm": 25 + lift * 0.4, "brow_height_right_mm": 25 + lift,
                     "eye_aperture_left_mm": 9.0, "eye_aperture_right_mm": 9.2, "eye_closed_left": False,
                     "eye_closed_right": False, "eye_status_left": "ok", "eye_status_right": "ok",
                     **{b: 0.0 for b in BLENDSHAPE_NAMES}})
        lms.append(None)
    s = summarize(build_table(rows, lms), baseline={"session_id": "x", "medians": {"eye_aperture_left_mm": 10.0}}).as_dict()
    assert set(s["steps"]) == {"neutral", "raising_eyebrows"}
    dyn = s["asymmetry"]["dynamic"]["raising_eyebrows"]
    assert dyn["weaker_side"] == "left" and dyn["left"] == pytest.approx(2.0) and dyn["right"] == pytest.approx(5.0)
    assert s["vs_baseline"]["difference"]["eye_aperture_left_mm"] == pytest.approx(-1.0)
    assert s["eye_status"]["left"] == {"ok": 60}


def test_ibug_views(faces):
    _, res = faces
    lm = res[0].landmarks_px
    p68 = L.ibug68(lm)
    assert p68.shape == (68, 3) and L.ibug51(lm).shape == (51, 3)
    assert (np.diff(p68[0:9, 1]) > -1).all() and p68[8, 1] > p68[30, 1] > p68[27, 1]  # jaw down to chin; nose
    assert p68[36, 0] < p68[39, 0] < p68[42, 0] < p68[45, 0]  # eye corners in image order
    level = L.ibug68(lm, tilt_correct=True)
    a, b = L.level_by_irises(lm[[L.RIGHT_IRIS_CENTER, L.LEFT_IRIS_CENTER]], lm)
    assert a[1] == pytest.approx(b[1], abs=1e-6) and level.shape == (68, 3)
    with pytest.raises(ValueError, match="478"):
        L.ibug68(lm[:468])


def test_series_row_of_a_neutral_open_eyed_frame(faces):
    """The values (not just the columns) the series holds for the sample's first frame: a still, frontal,
    neutral face with open eyes and closed lips; and the table keeps them as computed."""
    rgb, res = faces
    row = compute_measures(res[0], IrisScale(), rgb[0])
    table = build_table([{"frame": 0, "t_s": 0.0, "face": True, "faces": 1, "step": "", **row}], [res[0].landmarks_px])
    got = {c: table.column(c)[0].as_py() for c in table.column_names}
    for side in ("left", "right"):
        assert got[f"eye_status_{side}"] == "ok" and got[f"lid_confidence_{side}"] > 0.9
        assert not got[f"eye_closed_{side}"] and got[f"commissure_seam_{side}"]  # open eyes, closed lips
        assert got[f"mrd1_{side}_mm"] + got[f"mrd2_{side}_mm"] == pytest.approx(got[f"eye_aperture_{side}_mm"], abs=1e-4)
        assert 2 < got[f"mrd1_{side}_mm"] < 6 and 3 < got[f"mrd2_{side}_mm"] < 8
        assert abs(got[f"eye_aperture_{side}_mm"] - got[f"eye_aperture_raw_{side}_mm"]) < 1.5  # no ptosis to miss
        assert abs(got[f"commissure_height_{side}_mm"] - got[f"commissure_height_raw_{side}_mm"]) < 1.0
        assert 15 < got[f"commissure_excursion_{side}_mm"] < 35 and 5 < got[f"smile_angle_{side}_deg"] < 30
        assert 0 <= got[f"dental_show_{side}_mm2"] < 15  # lips together: hardly any opening
        assert abs(got[f"gaze_horizontal_{side}_mm"]) < 2 and got[f"iris_diameter_{side}_mm"] == pytest.approx(11.7, abs=0.5)
    assert abs(got["yaw_deg"]) < 5 and abs(got["pitch_deg"]) < 10 and 0.7 < got["mm_per_px"] < 1.0
    for col, v in row.items():  # stored as computed (float32), NaN as null
        stored = got[col]
        if isinstance(v, float):
            assert (stored is None) if math.isnan(v) else stored == pytest.approx(v, rel=1e-6, abs=1e-6), col
        else:
            assert stored == v, col
    np.testing.assert_array_equal(np.array(got["landmarks_px"], np.float32), res[0].landmarks_px.ravel())
