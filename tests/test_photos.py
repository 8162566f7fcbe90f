"""Photos as input: one photo is a one-frame session; a facial-palsy photo set (eight standard poses)
is one session with a step per pose, static and dynamic asymmetry and an eFace estimate.

The photo set is synthesized from the registry's real portrait (single_face.jpg): the smile and the
tight eye closure are planted by warping (monitor/lab/synthetic.py), weaker on the patient's right.
"""

import json

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import run_cli

from monitor.capture.photo_set import find_photo_set
from monitor.errors import FacemonitorError
from monitor.measures.palsy import eface
from monitor.protocol import steps as S
from monitor.protocol.poses import POSE_NAMES, pose_from_name
from monitor.store.db import Store

PORTRAIT = "single_face.jpg"


# -- pure: names, manifests, refusals ------------------------------------------------------------
@pytest.mark.fast
def test_pose_names_are_case_and_separator_tolerant():
    assert pose_from_name("rest").step == S.NEUTRAL
    assert pose_from_name("02_Smile").step == S.SHOWING_TEETH
    assert pose_from_name("Brow-Raise").step == S.RAISING_EYEBROWS
    assert pose_from_name("3 eyes closed  TIGHT").step == S.EYES_CLOSED_FIRMLY
    assert pose_from_name("eyes.closed.gentle").step == S.EYES_CLOSED
    assert pose_from_name("pucker").step == S.WHISTLING
    assert pose_from_name("neutral").name == "rest"  # the protocol's step names are accepted too
    assert pose_from_name("snarl").step == "snarl"
    assert pose_from_name("08-lower_lip_depression").step == "lower_lip_depression"
    assert pose_from_name("IMG_0412") is None and pose_from_name("smiley") is None
    assert len(POSE_NAMES) == 8


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"not decoded here")
    return folder


@pytest.mark.fast
def test_photo_set_by_names_and_by_manifest(tmp_path):
    d = _touch(tmp_path / "named", "rest.JPG", "02_smile.png", "Eyes-Closed-Tight.jpeg", "notes.txt")
    ps = find_photo_set([d])
    assert [p.pose.name for p in ps.photos] == ["rest", "eyes_closed_tight", "smile"]  # the standard order
    assert ps.steps == (S.NEUTRAL, S.EYES_CLOSED_FIRMLY, S.SHOWING_TEETH)
    assert [ps.step_at(t) for t in (0.0, 1.0, 2.0, 3.0)] == [S.NEUTRAL, S.EYES_CLOSED_FIRMLY, S.SHOWING_TEETH, ""]
    assert ps.missing == ("brow_raise", "eyes_closed_gentle", "snarl", "pucker", "lower_lip_depression")

    m = _touch(tmp_path / "manifest", "IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg")
    (m / "poses.csv").write_text("file,pose\nIMG_1.jpg,Rest  # first\nIMG_2.jpg,lower lip depression\n")
    assert [(p.path.name, p.pose.name) for p in find_photo_set([m]).photos] == \
        [("IMG_1.jpg", "rest"), ("IMG_2.jpg", "lower_lip_depression")]  # a manifest in the folder wins
    j = tmp_path / "set.json"
    j.write_text(json.dumps({"manifest/IMG_3.jpg": "pucker", "manifest/IMG_1.jpg": "showing_teeth"}))
    assert [(p.path.name, p.pose.name) for p in find_photo_set([j]).photos] == \
        [("IMG_1.jpg", "smile"), ("IMG_3.jpg", "pucker")]


@pytest.mark.fast
@pytest.mark.parametrize("files, manifest, message", [
    (("rest.jpg", "IMG_0412.jpg"), None, "no pose named by IMG_0412.jpg"),
    (("smile.jpg", "02_Smile.png"), None, "two photos of pose smile"),
    (("a.jpg",), "a.jpg,grimace\n", "unknown poses: a.jpg → grimace"),
    (("a.jpg",), "b.jpg,rest\n", "no such photo"),
])
def test_a_bad_photo_set_is_refused_before_anything_runs(tmp_path, files, manifest, message):
    d = _touch(tmp_path / "set", *files)
    if manifest:
        (d / "poses.csv").write_text(manifest)
    with pytest.raises(FacemonitorError, match=message) as e:
        find_photo_set([d])
    assert "poses:" in str(e.value) or "no such photo" in str(e.value) or "two photos" in str(e.value)


@pytest.mark.fast
@pytest.mark.timeout(60)
def test_unknown_file_names_are_refused_with_exit_2_and_the_known_poses(tmp_path):
    d = _touch(tmp_path / "set", "rest.jpg", "holiday.jpg")
    r = run_cli("analyze", "--photo-set", d, "--json", store=tmp_path / "store", timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: photo set: no pose named by holiday.jpg") and len(r.stderr.splitlines()) == 1
    assert all(n in r.stderr for n in POSE_NAMES)
    assert not (tmp_path / "store" / "sessions").exists() or not any((tmp_path / "store" / "sessions").iterdir())


@pytest.mark.fast
def test_eface_from_photo_poses_uses_what_is_there_and_lists_what_is_missing():
    rest = {"brow_height_left_mm": 20.0, "brow_height_right_mm": 20.0, "eye_aperture_left_mm": 9.0,
            "eye_aperture_right_mm": 9.0, "eye_aperture_raw_left_mm": 9.0, "eye_aperture_raw_right_mm": 9.0,
            "commissure_excursion_left_mm": 30.0, "commissure_excursion_right_mm": 30.0,
            "dental_show_left_mm2": 10.0, "dental_show_right_mm2": 10.0}
    eee = dict(rest, dental_show_left_mm2=90.0, dental_show_right_mm2=30.0)  # the right lower lip moves a quarter
    pucker = dict(rest, eye_aperture_raw_left_mm=9.0, eye_aperture_raw_right_mm=6.0)  # the right eye narrows
    g = eface({S.NEUTRAL: rest, "lower_lip_depression": eee, S.WHISTLING: pucker})
    assert g["items"]["dynamic:lower_lip_depression"] == pytest.approx(25.0)
    assert g["items"]["synkinesis:ocular"] == pytest.approx(100 * (1 - 3 / 9), abs=0.1)
    assert g["missing_poses"]["dynamic:oral_commissure_with_smile"] == "smile"
    assert g["missing_poses"]["synkinesis:midfacial"] == "eyes_closed_tight and smile"
    assert "synkinesis:ocular" not in g["missing_poses"]
    assert g["from_steps"] == [S.NEUTRAL, "lower_lip_depression", S.WHISTLING]
    assert eface({S.SHOWING_TEETH: rest}) is None  # no rest photo, no estimate


# -- real model: sessions --------------------------------------------------------------------------
def _lift(image: np.ndarray, centre, sigma: float, dy: float) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    wgt = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma * sigma))
    return cv2.remap(image, x, (y + dy * wgt).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def poses(sample, tmp_path_factory):
    """rest (the real portrait), smile and tight eye closure planted weaker on the patient's right,
    a brow raise, as BGR images by pose name."""
    from engines import create_runner
    from monitor.lab import synthetic as syn
    from monitor.measures import face_model as L

    rest = cv2.imread(str(sample(PORTRAIT)))
    runner = create_runner("mediapipe").activate()
    lm = runner.infer(cv2.cvtColor(rest, cv2.COLOR_BGR2RGB), 0).landmarks_px
    runner.deactivate()
    smile = syn.lower_mouth_corner(syn.lower_mouth_corner(rest, lm, "left", -12), lm, "right", -3)
    tight = syn.lower_upper_lid(rest, lm, "left", 0.8 * syn.fissure_px(lm, "left"))
    tight = syn.lower_upper_lid(tight, lm, "right", 0.3 * syn.fissure_px(lm, "right"))
    brow = rest
    for contour in (L.LEFT_BROW_CONTOUR, L.RIGHT_BROW_CONTOUR):
        brow = _lift(brow, lm[contour, :2].mean(0), 20.0, 10.0)
    return {"rest": rest, "smile": smile, "eyes_closed_tight": tight, "brow_raise": brow}


def _session_row(store_dir, sid):
    with Store(store_dir) as store:
        return store.get_session(sid)


@pytest.mark.timeout(240)
def test_a_photo_is_a_one_frame_session_with_what_a_still_allows(sample, store_dir):
    r = run_cli("analyze", sample(PORTRAIT), "--json", store=store_dir)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "complete" and out["frames"] == 1 and out["frames_with_face"] == 1
    assert out["processing_fps"] is None  # no frame rate for a photo: absent, not zero
    s = out["summary"]
    assert "blinks" not in s and all("fatigue" not in st for st in s["steps"].values())
    assert s["measures"]["eye_aperture_left_mm"]["n"] == 1 and 5 < s["measures"]["eye_aperture_left_mm"]["median"] < 15
    assert s["asymmetry"]["static"]["brow_height_mm"]["abs_diff"] >= 0
    assert _session_row(store_dir, out["session_id"]).mode == "photo"
    text = run_cli("analyze", sample(PORTRAIT), store=store_dir)
    assert text.returncode == 0 and "fps" not in text.stdout.splitlines()[0] and "eye opening" in text.stdout


@pytest.mark.timeout(240)
def test_a_photo_without_a_face_is_an_incomplete_session_and_a_non_zero_exit(sample, tmp_path, store_dir):
    cap = cv2.VideoCapture(str(sample("no_face.mp4")))
    ok, frame = cap.read()
    cap.release()
    photo = tmp_path / "empty_room.jpg"
    cv2.imwrite(str(photo), frame)
    r = run_cli("analyze", photo, "--json", store=store_dir)
    assert r.returncode == 2
    assert r.stderr.startswith("error: no face was found in the photo") and len(r.stderr.splitlines()) == 1
    out = json.loads(r.stdout)
    assert out["status"] == "incomplete" and out["frames"] == 1 and out["frames_with_face"] == 0
    row = _session_row(store_dir, out["session_id"])
    assert row.status == "incomplete" and "no face" in row.error and row.mode == "photo"


@pytest.mark.timeout(300)
def test_a_photo_set_by_names_is_one_session_with_a_step_per_pose(poses, tmp_path, store_dir):
    d = tmp_path / "set"
    d.mkdir()
    for name, file in (("rest", "rest.jpg"), ("smile", "02_Smile.png"), ("eyes_closed_tight", "Eyes-Closed-Tight.jpeg"),
                       ("brow_raise", "brow raise.jpg")):
        cv2.imwrite(str(d / file), poses[name])
    r = run_cli("analyze", "--photo-set", d, "--json", store=store_dir, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "complete" and out["frames"] == out["frames_with_face"] == 4
    assert out["photo_set"]["missing"] == ["eyes_closed_gentle", "snarl", "pucker", "lower_lip_depression"]
    assert out["photo_set"]["poses"]["smile"] == {"file": "02_Smile.png", "step": S.SHOWING_TEETH, "t_s": 3.0}
    table = pq.read_table(out["series_path"])
    assert table.column("t_s").to_pylist() == [0.0, 1.0, 2.0, 3.0]
    assert table.column("step").to_pylist() == [S.NEUTRAL, S.RAISING_EYEBROWS, S.EYES_CLOSED_FIRMLY, S.SHOWING_TEETH]
    s = out["summary"]
    assert set(s["steps"]) == {S.NEUTRAL, S.RAISING_EYEBROWS, S.EYES_CLOSED_FIRMLY, S.SHOWING_TEETH}
    assert s["asymmetry"]["window"] == S.NEUTRAL and s["asymmetry"]["static"]  # static asymmetry at rest
    dyn = s["asymmetry"]["dynamic"]
    assert dyn[S.SHOWING_TEETH]["weaker_side"] == "right"  # the planted weakness, found
    assert dyn[S.EYES_CLOSED_FIRMLY]["weaker_side"] == "right"
    ef = s["palsy"]["eface_estimate"]
    assert ef["items"]["dynamic:oral_commissure_with_smile"] < 80 and ef["items"]["dynamic:full_eye_closure"] < 80
    assert ef["missing_poses"]["dynamic:gentle_eye_closure"] == "eyes_closed_gentle"
    assert "blinks" not in s and out["processing_fps"] is None
    row = _session_row(store_dir, out["session_id"])
    assert row.mode == "photo_set" and row.status == "complete"
    with Store(store_dir) as store:
        events = [e for e in store.events(out["session_id"]) if e["kind"] == "photo_set"]
    assert json.loads(events[0]["detail"])["missing"] == out["photo_set"]["missing"]


@pytest.mark.timeout(300)
def test_a_photo_set_by_manifest_without_rest_and_with_a_faceless_photo(poses, sample, tmp_path, store_dir):
    """No rest: no eFace estimate; the missing poses are listed; a photo without a face: incomplete."""
    d = tmp_path / "clinic"
    d.mkdir()
    cv2.imwrite(str(d / "IMG_0001.jpg"), poses["smile"])
    cv2.imwrite(str(d / "IMG_0002.jpg"), poses["brow_raise"])
    cap = cv2.VideoCapture(str(sample("no_face.mp4")))
    cv2.imwrite(str(d / "IMG_0003.jpg"), cap.read()[1])  # a photo of an empty room
    cap.release()
    (d / "poses.json").write_text(json.dumps({"IMG_0001.jpg": "smile", "IMG_0002.jpg": "Brow Raise",
                                              "IMG_0003.jpg": "pucker"}))
    r = run_cli("analyze", "--photo-set", d, store=store_dir, timeout=300)
    assert r.returncode == 2  # kept, but not complete: one photo has no face
    assert r.stderr.startswith("error: no face was found in 1 of 3 photos: pucker (IMG_0003.jpg)")
    assert "missing poses: rest, eyes_closed_gentle, eyes_closed_tight, snarl, lower_lip_depression" in r.stdout
    assert "eFace estimate: none (needs the rest photo)" in r.stdout
    lines = r.stdout.splitlines()
    assert any(ln.split()[:2] == ["brow_raise", "IMG_0002.jpg"] for ln in lines)
    assert any(ln.split()[:2] == ["smile", "IMG_0001.jpg"] for ln in lines)
    with Store(store_dir) as store:
        row = store.list_sessions()[0]
        steps = store.steps(row.id)
    assert row.mode == "photo_set" and row.status == "incomplete" and row.frames == 3 and row.summary.palsy is None
    assert set(row.summary.steps) == {S.RAISING_EYEBROWS, S.SHOWING_TEETH}
    assert [(s["step"], s["status"]) for s in steps] == [(S.RAISING_EYEBROWS, "done"), (S.SHOWING_TEETH, "done"),
                                                          (S.WHISTLING, "no_face")]


@pytest.mark.timeout(400)
def test_the_app_photos_tab_analyses_an_upload_and_camera_snapshots(poses, sample, tmp_path):
    from monitor.app.core import AppConfig, AppCore
    from monitor.app.tab_photos import analyze_photos, keep_snapshot

    core = AppCore(AppConfig(store_root=tmp_path / "store", source=str(sample("single_face.mp4"))))
    up = tmp_path / "upload"
    up.mkdir()
    for name in ("rest", "smile"):
        cv2.imwrite(str(up / f"{name}.jpg"), poses[name])
    shown = analyze_photos(core, [str(up / "rest.jpg"), str(up / "smile.jpg")], None, "Ann")
    assert shown.session_id is not None and "photo set, 2 photos, 2 with a face" in shown.text
    assert shown.table["pose"].tolist() == ["rest", "smile"]
    view = core.session_view(shown.session_id)  # in the Review tab like any other session
    assert view.row.mode == "photo_set" and view.row.person == "Ann" and view.series.num_rows == 2
    assert view.steps["step"].tolist() == [S.NEUTRAL, S.SHOWING_TEETH] and set(view.steps["status"]) == {"done"}
    assert view.row.summary.palsy["eface_estimate"]["items"]["dynamic:oral_commissure_with_smile"] < 80

    kept = keep_snapshot({}, "rest", cv2.cvtColor(poses["rest"], cv2.COLOR_BGR2RGB))
    tight = cv2.cvtColor(poses["eyes_closed_tight"], cv2.COLOR_BGR2RGB)
    kept = keep_snapshot(kept.snapshots, "eyes_closed_tight", tight)
    assert kept.snapshots_text == "Snapshots: rest, eyes_closed_tight"
    shown = analyze_photos(core, None, kept.snapshots, "")
    row = core.session_view(shown.session_id).row
    assert row.mode == "photo_set" and set(row.summary.steps) == {S.NEUTRAL, S.EYES_CLOSED_FIRMLY}
    assert analyze_photos(core, None, {}, "").session_id is None  # nothing to analyse: said, not run
    core.close()
