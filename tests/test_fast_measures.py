"""From landmarks and pixels to the series row, the frame's quality, and the session summary, on the
hand-made face of tests/synthetic_face.py and on synthetic series tables: no model, no sample media."""

import json
import math

import cv2
import numpy as np
import pyarrow as pa
import pytest
from synthetic_face import IRIS_R, LOWER_LID, UPPER_LID, dental_show, draw, face, rot

from calibration.scale import DEFAULT_IRIS_MM, IrisScale
from engines.base import BLENDSHAPE_NAMES, LandmarkResult
from monitor.measures import face_model as L
from monitor.measures.asymmetry import asymmetry_index, compare, dynamic_asymmetry, static_asymmetry
from monitor.measures.fatigue import FatigueOptions, FatigueTracker, fatigue_curve
from monitor.measures.frame import compute_measures, empty_measures, eye_state, nan_to_none
from monitor.measures.gaze import gaze_excursions
from monitor.measures.kernels._eyelid import C_LOWER, C_UPPER, EYE_OUT, IN_FRAME, IRIS_SCORE, T_LOWER, T_UPPER
from monitor.measures.quality import LIMITS as QUALITY
from monitor.measures.quality import PROMPTS, assess, face_light
from monitor.measures.summary import NO_FRAMES, SessionSummary, fatigue_between, summarize
from monitor.protocol import steps as S
from monitor.store.series import build_table

pytestmark = pytest.mark.fast

MM_PER_PX = DEFAULT_IRIS_MM / (2 * IRIS_R)  # the first frame's scale: the iris is 2·IRIS_R px wide


def result(rotation=None, blink=(0.0, 0.0), pts=None):
    p, m = face(rotation)
    b = np.zeros(52, np.float32)
    b[BLENDSHAPE_NAMES.index("eyeBlinkLeft")], b[BLENDSHAPE_NAMES.index("eyeBlinkRight")] = blink
    return LandmarkResult(1, (p if pts is None else pts).astype(np.float32), b, m.astype(np.float32))


# ---- one frame's row ---------------------------------------------------------------------------------

def test_row_of_a_drawn_face_has_the_planted_lids_and_mouth_in_mm():
    """A left ptosis (upper lid 3 px lower than its landmarks) and a left mouth corner 3 px lower than its
    landmark: the refined columns show both, the *_raw_* columns (landmarks alone) neither."""
    img = draw(upper=(UPPER_LID - 3.0, UPPER_LID), seam_shift=(3.0, 0.0))
    row = compute_measures(result(), IrisScale(), img)
    k = MM_PER_PX
    assert row["mm_per_px"] == pytest.approx(k)
    assert row["eye_status_left"] == row["eye_status_right"] == "ok"
    assert row["lid_confidence_left"] > 0.9 and row["lid_confidence_right"] > 0.9
    assert row["eye_aperture_left_mm"] == pytest.approx((UPPER_LID - 3 + LOWER_LID) * k, abs=0.15)
    assert row["eye_aperture_right_mm"] == pytest.approx((UPPER_LID + LOWER_LID) * k, abs=0.15)
    assert row["mrd1_left_mm"] == pytest.approx((UPPER_LID - 3) * k, abs=0.15)
    assert row["mrd2_left_mm"] == pytest.approx(LOWER_LID * k, abs=0.15)
    assert row["eye_aperture_raw_left_mm"] == pytest.approx((UPPER_LID + LOWER_LID) * k)  # the landmarks lag
    assert row["mrd1_raw_left_mm"] == pytest.approx(UPPER_LID * k)
    assert row["commissure_seam_left"] and row["commissure_seam_right"]
    assert row["commissure_height_raw_left_mm"] == pytest.approx(100 * k)
    assert row["commissure_height_left_mm"] == pytest.approx(103 * k, abs=0.15)
    assert row["commissure_height_right_mm"] == pytest.approx(100 * k, abs=0.15)
    assert row["intercanthal_mm"] == pytest.approx(54 * k, rel=1e-6)
    assert row["iris_diameter_left_mm"] == pytest.approx(DEFAULT_IRIS_MM, rel=1e-6)
    assert row["dental_show_left_mm2"] == pytest.approx(dental_show("left") * k * k, rel=1e-4)
    assert row["smile_angle_left_deg"] == pytest.approx(math.degrees(math.atan2(15, 45)), rel=1e-5)
    assert (row["yaw_deg"], row["pitch_deg"], row["roll_deg"]) == pytest.approx((0, 0, 0), abs=1e-6)
    assert not row["eye_closed_left"] and not row["eye_closed_right"]


@pytest.mark.parametrize("blink, angles, status", [
    ((0.9, 0.0), (0, 0, 0), ("closed", "ok")),
    ((0.0, 0.0), (40, 0, 0), ("pose", "pose")),
    ((0.0, 0.0), (0, -30, 0), ("pose", "pose")),
])
def test_an_eye_that_cannot_be_measured_says_why_and_has_no_value(blink, angles, status):
    scale = IrisScale()
    compute_measures(result(), scale, None)  # calibrated on a frontal frame (a turned one does not calibrate)
    row = compute_measures(result(rot(*angles), blink), scale, draw())
    for side, want in zip(("left", "right"), status):
        assert row[f"eye_status_{side}"] == want
        assert math.isnan(row[f"eye_aperture_{side}_mm"]) == (want != "ok")
        # a closed eye keeps its landmark value; beyond the pose gate no measure is reported at all
        assert math.isfinite(row[f"eye_aperture_raw_{side}_mm"]) == (want != "pose")
    assert row["gate_status"] == ("pose" if "pose" in status else "ok")
    assert row["eye_closed_left"] == (blink[0] >= 0.5)


def test_rows_without_a_face_an_image_or_a_scale():
    none = compute_measures(LandmarkResult(0), IrisScale(), draw())
    assert none == empty_measures("no_face")
    assert none["eye_status_left"] == "no_face" and all(math.isnan(v) for k, v in none.items() if k.endswith("_mm"))
    no_image = compute_measures(result(), IrisScale(), None)
    assert no_image["eye_status_left"] == "no_image" and math.isnan(no_image["eye_aperture_left_mm"])
    assert no_image["eye_aperture_raw_left_mm"] == pytest.approx(16 * MM_PER_PX)
    assert no_image["commissure_height_left_mm"] == no_image["commissure_height_raw_left_mm"]
    pts, _ = face()
    for ring in (L.LEFT_IRIS_RING, L.RIGHT_IRIS_RING):
        pts[list(ring)] = pts[ring[0]]  # no iris width: no scale
    no_scale = compute_measures(result(pts=pts), IrisScale(), draw())
    assert no_scale["eye_status_right"] == "no_scale" and math.isnan(no_scale["mm_per_px"])
    assert json.loads(json.dumps(nan_to_none(no_scale), allow_nan=False))["mm_per_px"] is None


def _eye(t_upper=-7.0, t_lower=9.0, c_upper=0.6, c_lower=0.5, score=40.0, in_frame=1.0):
    e = np.full(EYE_OUT, np.nan)
    e[[T_UPPER, T_LOWER, C_UPPER, C_LOWER, IRIS_SCORE, IN_FRAME]] = t_upper, t_lower, c_upper, c_lower, score, in_frame
    return e


@pytest.mark.parametrize("eye, blink, yaw, pitch, want, conf", [
    (_eye(), 0.0, 0, 0, "ok", 1.0),
    (_eye(c_upper=0.3), 0.0, 0, 0, "ok", 0.6),  # the weakest edge sets the confidence
    (_eye(score=6.0), 0.0, 0, 0, "low_contrast", 0.3),
    (_eye(c_lower=np.nan), 0.0, 0, 0, "low_contrast", 0.0),
    (_eye(t_upper=9.5), 0.0, 0, 0, "low_contrast", 0.0),  # margins in the wrong order
    (_eye(in_frame=0.9), 0.0, 0, 0, "out_of_frame", 0.0),
    (_eye(), 0.0, 31, 0, "pose", 0.0),
    (_eye(), 0.0, 0, -26, "pose", 0.0),
    (_eye(), 0.5, 0, 0, "closed", 0.0),
])
def test_eye_state(eye, blink, yaw, pitch, want, conf):
    assert eye_state(eye, blink, yaw, pitch) == (want, pytest.approx(conf))


# ---- frame quality ---------------------------------------------------------------------------------

def _quality_of(img_rgb, row=None, pts=None, **kw):
    p, _ = face()
    pts = p if pts is None else pts
    r = dict(compute_measures(result(), IrisScale(), img_rgb), face=True, faces=1) if row is None else row
    bgr = cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR)
    return assess(r, face_light(bgr, pts), pts, bgr.shape[:2], **kw)


def test_a_good_frame_passes_and_each_problem_is_named():
    img = draw()
    good = _quality_of(img)
    assert good.ok and good.code == "" and good.prompt == "Good: hold still."
    row = dict(compute_measures(result(), IrisScale(), img), face=True, faces=1)
    assert _quality_of((img * 0.3).astype(np.uint8)).problems == ("too_dark",)
    assert _quality_of(np.clip(img * 1.7, 0, 255).astype(np.uint8)).problems == ("too_bright",)
    shaded = img.copy()
    shaded[:, 200:] = (shaded[:, 200:] * 0.5).astype(np.uint8)  # the image's right: the patient's left
    light = face_light(cv2.cvtColor(shaded, cv2.COLOR_RGB2BGR), face()[0])
    assert light.left < 0.6 * light.right
    assert _quality_of(shaded).problems == ("uneven_light",)
    assert _quality_of(img, dict(row, faces=2)).problems == ("several_faces",)
    assert _quality_of(img, dict(row, yaw_deg=QUALITY.max_yaw_deg + 1, roll_deg=-20.0)).problems == (
        "turned", "tilted_sideways")
    far = _quality_of(img, dict(row, mm_per_px=DEFAULT_IRIS_MM / (QUALITY.min_iris_px - 1)))
    assert far.problems == ("too_far",) and far.prompt == PROMPTS["too_far"] and far.code == "too_far"
    covered = dict(row, eye_status_left="low_contrast", eye_status_right="out_of_frame")
    assert _quality_of(img, covered).problems == ("eyes_covered",)
    assert _quality_of(img, covered, eyes_should_be_open=False).ok  # an eyes-closed step
    assert _quality_of(img, dict(row, face=False)).problems == ("no_face",)
    # a mesh the plausibility gates refused is not a face to count time on
    assert _quality_of(img, dict(row, gate_status="ipd_implausible")).problems == ("no_face",)


def test_a_face_at_the_edge_is_cut_off_and_a_face_filling_the_frame_is_too_close():
    img = draw()
    pts, _ = face()
    edge = pts.copy()
    edge[:, 0] += 395 - pts[:, 0].max()  # the face's right side within 2 % of the border
    row = dict(compute_measures(result(), IrisScale(), img), face=True, faces=1)
    assert assess(row, None, edge, img.shape[:2]).problems == ("cut_off",)
    close = assess(row, None, pts, (200, 400))
    assert "too_close" in close.problems


# ---- iris scale ------------------------------------------------------------------------------------

def test_iris_scale_ignores_turned_frames_and_bad_diameters():
    s = IrisScale(window=3)
    assert math.isnan(s.update(np.nan, 0.0, 0.0))  # nothing usable yet
    assert s.update(20.0, np.nan, 0.0) == pytest.approx(DEFAULT_IRIS_MM / 20)
    assert s.update(40.0, 40.0, 30.0) == pytest.approx(DEFAULT_IRIS_MM / 20)  # turned beyond 25°: ignored
    assert s.update(22.0, 18.0, 0.0) == pytest.approx(DEFAULT_IRIS_MM / 20)
    with pytest.raises(ValueError, match="window must be at least 1"):
        IrisScale(window=0)


# ---- fatigue, asymmetry, gaze ------------------------------------------------------------------------

def test_fatigue_leaves_out_the_frames_after_a_blink_and_reports_json():
    t = np.arange(0, 8, 0.1)
    v = np.full(t.size, 5.0)
    closed = np.zeros(t.size, bool)
    closed[30] = True
    v[31:33] = 0.5  # the two frames after reopening still read low: left out
    c = fatigue_curve(t, v, closed)
    assert c.frames_closed == 1 and c.frames_used == t.size - 3
    assert c.baseline_mm == c.end_mm == 5.0 and c.drop_mm == 0.0 and c.slope_mm_per_min == 0.0
    assert c.time_to_drop_s is None and c.duration_s == pytest.approx(7.9)
    j = c.as_json(with_bins=True)
    assert j["drop_pct"] == 0.0 and len(j["bins"]["t_s"]) == 16 and set(j["bins"]["mm"]) == {5.0}
    none = FatigueTracker().curve()
    assert none.as_json()["baseline_mm"] is None and none.frames_used == 0
    shorter = fatigue_curve(t, v, closed, FatigueOptions(reopen_frames=0))
    assert shorter.frames_used == t.size - 1 and min(shorter.bin_mm) < 5.0
    with pytest.raises(ValueError, match="1-D of one length"):
        fatigue_curve(t, v[:-1])


def test_asymmetry_of_window_medians():
    med = {"brow_height_left_mm": 22.0, "brow_height_right_mm": 25.0, "eye_aperture_left_mm": 9.0,
           "eye_aperture_right_mm": 9.2, "commissure_height_left_mm": 52.0, "commissure_height_right_mm": 50.0,
           "smile_angle_left_deg": 10.0, "smile_angle_right_deg": float("nan")}
    st = static_asymmetry(med)
    assert set(st) == {"brow_height_mm", "eye_aperture_mm", "commissure_height_mm"}  # NaN pairs left out
    assert st["brow_height_mm"]["weaker_side"] == "left" and st["brow_height_mm"]["diff_pct_of_stronger"] == 12.0
    assert st["eye_aperture_mm"]["weaker_side"] == "neither"  # below the 0.5 mm noise floor
    assert st["commissure_height_mm"]["weaker_side"] == "left"  # the lower corner
    lifted = dict(med, brow_height_left_mm=24.0, brow_height_right_mm=30.0)
    dyn = dynamic_asymmetry({S.RAISING_EYEBROWS: lifted}, med)
    assert dyn[S.RAISING_EYEBROWS]["left"] == 2.0 and dyn[S.RAISING_EYEBROWS]["right"] == 5.0
    assert dyn[S.RAISING_EYEBROWS]["weaker_side"] == "left" and dyn[S.RAISING_EYEBROWS]["measure"] == "brow_height_mm"
    idx = asymmetry_index(st, dyn)
    assert idx["parts"] == {"rest:brow_height_mm": 12.0, "rest:eye_aperture_mm": pytest.approx(2.17),
                            f"{S.RAISING_EYEBROWS}:brow_height_mm": 60.0}
    assert idx["index_pct"] == pytest.approx((12.0 + 2.17 + 60.0) / 3, abs=0.01)
    assert asymmetry_index({}, {}) is None and compare(None, 1.0, True, 0.5) is None


def test_gaze_excursions_per_eye_and_their_difference():
    neutral = {"gaze_horizontal_left_mm": 0.2, "gaze_horizontal_right_mm": -0.1, "gaze_vertical_left_mm": 0.0,
               "gaze_vertical_right_mm": 0.0}
    left = {"gaze_horizontal_left_mm": 3.2, "gaze_horizontal_right_mm": 1.4, "gaze_vertical_left_mm": 0.5,
            "gaze_vertical_right_mm": 0.5}
    g = gaze_excursions({"gaze_left": left, "gaze_up_right": left}, neutral)
    assert g["gaze_left"]["eyes"]["left"] == {"dx_mm": 3.0, "dy_mm": 0.5, "along_mm": 3.0}
    assert g["gaze_left"]["eyes"]["right"]["along_mm"] == 1.5 and g["gaze_left"]["difference_mm"] == 1.5
    assert g["gaze_up_right"]["eyes"]["left"]["along_mm"] == pytest.approx((-3.0 + 0.5) / math.sqrt(2), abs=1e-3)
    assert gaze_excursions({"gaze_left": left}, None) == {}


# ---- the session summary ------------------------------------------------------------------------------

FPS = 30


def _protocol_rows():
    """A synthetic session: 10 frames without a face, neutral 3 s with two blinks, raising_eyebrows 2 s
    (the left brow lifts 2 mm, the right 5 mm), showing_teeth 2 s, eyes_closed_firmly 2 s, gaze_left 12 s
    (both irises 3 mm to the left) with the left lid sinking from 4 s on, gaze_up 1 s (both irises 1 mm up)."""
    plan = [("", 10 / FPS), (S.NEUTRAL, 3), (S.RAISING_EYEBROWS, 2), (S.SHOWING_TEETH, 2), (S.EYES_CLOSED_FIRMLY, 2),
            ("gaze_left", 12), ("gaze_up", 1)]
    rows, i = [], 0
    for step, seconds in plan:
        for k in range(int(round(seconds * FPS))):
            ts = k / FPS
            face_here = step != ""
            closed = step == S.EYES_CLOSED_FIRMLY or (step == S.NEUTRAL and (30 <= k < 34 or 60 <= k < 63))
            mrd1_left = 4.0 - (0.25 * (ts - 4) if step == "gaze_left" and ts > 4 else 0.0)
            row = {"frame": i, "t_s": i / FPS, "face": face_here, "faces": (2 if i in (40, 41, 42) else 1) * face_here,
                   "step": step, **{b: 0.0 for b in BLENDSHAPE_NAMES}}
            if face_here:
                lift = (2.0, 5.0) if step == S.RAISING_EYEBROWS else (0.0, 0.0)
                up = 1.0 if step == "gaze_up" else 0.0
                row.update({
                    "brow_height_left_mm": 25 + lift[0], "brow_height_right_mm": 25 + lift[1],
                    "eye_aperture_left_mm": math.nan if closed else 9.0 - (4.0 - mrd1_left),
                    "eye_aperture_right_mm": math.nan if closed else 9.0,
                    "eye_aperture_raw_left_mm": 1.0 if closed else 9.0, "eye_aperture_raw_right_mm": 1.0 if closed else 9.0,
                    "mrd1_left_mm": math.nan if closed else mrd1_left, "mrd1_right_mm": math.nan if closed else 4.0,
                    "commissure_excursion_left_mm": 30.0 + (2.0 if step == S.SHOWING_TEETH else 0.0),
                    "commissure_excursion_right_mm": 30.0 + (6.0 if step == S.SHOWING_TEETH else 0.0),
                    "gaze_vertical_left_mm": up, "gaze_vertical_right_mm": up,
                    "gaze_horizontal_left_mm": 3.0 * (step == "gaze_left"),
                    "gaze_horizontal_right_mm": 3.0 * (step == "gaze_left"),
                    "eye_closed_left": closed, "eye_closed_right": closed,
                    "eye_status_left": "closed" if closed else "ok", "eye_status_right": "closed" if closed else "ok",
                    "mouthSmileLeft": 0.6 if step == S.SHOWING_TEETH else 0.0,
                    "mouthSmileRight": 0.9 if step == S.SHOWING_TEETH else 0.0})
            else:
                row.update(eye_status_left="no_face", eye_status_right="no_face")
            rows.append(row)
            i += 1
    return rows


@pytest.fixture(scope="module")
def session_table():
    rows = _protocol_rows()
    return build_table(rows, [None] * len(rows))


def test_summary_of_a_synthetic_protocol_session(session_table):
    s = summarize(session_table, baseline={"session_id": "b1", "medians": {"brow_height_left_mm": 24.0,
                                                                           "mrd1_left_mm": None}})
    n = session_table.num_rows
    assert s.face_found and s.face_fraction == round((n - 10) / n, 4) and s.frames_with_multiple_faces == 3
    assert s.blinks["count"] == 2  # the closed-eyes step is not blinking
    assert s.eye_status["left"] == {"ok": n - 10 - 60 - 7, "closed": 60 + 7}  # frames with a face only
    assert list(s.steps) == [S.NEUTRAL, S.RAISING_EYEBROWS, S.SHOWING_TEETH, S.EYES_CLOSED_FIRMLY, "gaze_left", "gaze_up"]
    assert s.steps[S.NEUTRAL].frames == 90 and s.steps[S.NEUTRAL].duration_s == pytest.approx(89 / FPS, abs=1e-3)
    # the sustained-gaze step has fatigue curves: the left lid sank 0.25 mm/s from 4 s, the right did not
    fat = s.steps["gaze_left"].fatigue_curve("left", "mrd1")
    gaze = np.array(session_table.column("step").to_pylist()) == "gaze_left"
    t = session_table.column("t_s").to_numpy()[gaze]
    want = fatigue_curve(t - t[0], session_table.column("mrd1_left_mm").to_numpy()[gaze]).as_json(with_bins=True)
    assert fat == want
    assert -15.0 < fat["slope_mm_per_min"] < -11.0  # −15 mm/min over the last 8 s of 12
    assert fat["baseline_mm"] == 4.0 and fat["drop_mm"] == pytest.approx(1.625, abs=0.05)
    assert fat["time_to_drop_s"] is None  # never 2 mm below the baseline
    assert s.steps["gaze_left"].fatigue_curve("right", "mrd1")["drop_mm"] == 0.0
    assert s.steps[S.NEUTRAL].fatigue is None  # not a sustained step
    assert s.steps[S.NEUTRAL].medians["mrd1_left_mm"] == 4.0
    # asymmetry at rest (none) and in movement: the left brow lifts less, the left corner moves less
    assert s.asymmetry["window"] == S.NEUTRAL and s.asymmetry["static"]["brow_height_mm"]["weaker_side"] == "neither"
    dyn = s.asymmetry["dynamic"]
    assert dyn[S.RAISING_EYEBROWS]["weaker_side"] == "left" and dyn[S.RAISING_EYEBROWS]["left"] == 2.0
    assert dyn[S.SHOWING_TEETH]["left"] == 2.0 and dyn[S.SHOWING_TEETH]["right"] == 6.0
    au12 = s.steps[S.SHOWING_TEETH].expression["action_units_p95"]["AU12"]
    assert au12 == {"left": 0.6, "right": 0.9, "left_minus_right": -0.3}
    assert s.gaze["gaze_up"]["eyes"]["left"]["along_mm"] == 1.0 and s.gaze["gaze_up"]["difference_mm"] == 0.0
    items = s.palsy["eface_estimate"]["items"]
    assert items["dynamic:brow_elevation"] == 40.0 and items["dynamic:oral_commissure_with_smile"] == pytest.approx(33.3)
    assert items["dynamic:full_eye_closure"] == 100.0
    assert s.vs_baseline == {"baseline_session": "b1", "difference": {"brow_height_left_mm": 1.0}}
    assert s.measure_median("brow_height_right_mm") == 25.0 and s.measure_median("nope") is None
    # what the store keeps reads back as the same summary
    assert SessionSummary.from_dict(json.loads(json.dumps(s.as_dict()))) == s


def test_summary_keeps_the_last_attempt_of_a_repeated_step():
    rows = []
    for i in range(60):
        attempt = 1 if i < 30 else 2
        rows.append({"frame": i, "t_s": i / FPS, "face": True, "faces": 1, "step": S.NEUTRAL, "step_attempt": attempt,
                     "brow_height_left_mm": 20.0 if attempt == 1 else 25.0, "eye_closed_left": False,
                     "eye_closed_right": False, "eye_status_left": "ok", "eye_status_right": "ok",
                     **{b: 0.0 for b in BLENDSHAPE_NAMES}})
    s = summarize(build_table(rows, [None] * 60))
    assert s.steps[S.NEUTRAL].frames == 30 and s.neutral_medians["brow_height_left_mm"] == 25.0
    assert s.measure_median("brow_height_left_mm") == 22.5  # session-wide figures keep every frame


def test_summary_without_frames_or_faces(session_table):
    assert summarize(session_table.slice(0, 0)) is NO_FRAMES and not NO_FRAMES.face_found
    nobody = summarize(session_table.slice(0, 10))
    assert not nobody.face_found and nobody.message == "no face was found in any frame"
    assert nobody.as_dict() == {"face_found": False, "message": "no face was found in any frame", "face_fraction": 0.0,
                                "frames_with_multiple_faces": 0}
    plain = summarize(session_table.drop_columns(["step"]).append_column("step", pa.array([""] * session_table.num_rows)))
    assert list(plain.steps) == ["session"] and plain.steps["session"].fatigue is not None  # the whole session
    assert fatigue_between(session_table, 40.0, 44.0) is None  # shorter than 6 s
    assert fatigue_between(session_table, 9.4, 21.3)["left"]["mrd1"]["drop_mm"] == pytest.approx(1.6, abs=0.1)


def test_the_numpy_fatigue_reference_bins_like_the_tracker():
    from monitor.measures.kernels.reference import FatigueReference

    rng = np.random.default_rng(2)
    t = np.arange(0, 10, 1 / FPS)
    v = 4 - 0.1 * t + rng.normal(0, 0.05, t.size)
    ref, tracker = FatigueReference(), FatigueTracker(FatigueOptions(reopen_frames=0))
    for ti, vi in zip(t, v):
        ref.update(ti, vi)
        tracker.update(ti, vi)
    assert len(ref.bins) == len(tracker.bin_v) == 19  # closed bins; the 20th is still filling
    np.testing.assert_allclose(ref.bins, tracker.bin_v)


# ---- the validation warps plant what they say ----------------------------------------------------------

def test_planted_ptosis_and_mouth_droop_move_the_refined_values_by_the_planted_size():
    from monitor.lab import synthetic

    pts, m = face()
    img = draw()
    assert synthetic.fissure_px(pts, "left") == pytest.approx(UPPER_LID + LOWER_LID)
    base = compute_measures(result(), IrisScale(), img)
    lid = compute_measures(result(), IrisScale(), synthetic.lower_upper_lid(img, pts, "left", 3.0))
    mouth = compute_measures(result(), IrisScale(), synthetic.lower_mouth_corner(img, pts, "right", 2.0))
    k = MM_PER_PX
    assert base["mrd1_left_mm"] - lid["mrd1_left_mm"] == pytest.approx(3.0 * k, abs=0.15)
    assert lid["mrd1_right_mm"] == pytest.approx(base["mrd1_right_mm"], abs=0.05)
    assert lid["mrd1_raw_left_mm"] == base["mrd1_raw_left_mm"]  # the landmarks did not move
    assert mouth["commissure_height_right_mm"] - base["commissure_height_right_mm"] == pytest.approx(2.0 * k, abs=0.15)
    assert mouth["commissure_height_left_mm"] - base["commissure_height_left_mm"] < 0.5 * 2.0 * k  # falls off
    assert synthetic.lower_upper_lid(img, pts, "left", 0.0) is not img
    with pytest.raises(ValueError, match="side must be 'left' or 'right'"):
        synthetic.fissure_px(pts, "top")


@pytest.mark.fast
def test_summary_of_rows_out_of_time_order_equals_the_ordered_one(session_table):
    # a broker restart can deliver results out of order; the summary sorts by time (fatigue needs it)
    shuffled = session_table.take(np.random.default_rng(0).permutation(session_table.num_rows))
    assert summarize(shuffled).as_dict() == summarize(session_table).as_dict()
