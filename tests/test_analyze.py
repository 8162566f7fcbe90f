"""`facemonitor analyze` end to end: the real model, a real engine process, a real SQLite store."""

import json
import sqlite3

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import run_cli, write_video

from monitor.store.db import Store

DESIGN_COLUMNS = ["frame", "t_s", "face", "eye_aperture_left_mm", "eye_aperture_right_mm", "mrd1_left_mm",
                  "mrd1_right_mm", "brow_height_left_mm", "brow_height_right_mm", "commissure_height_left_mm",
                  "commissure_height_right_mm", "intercanthal_mm", "yaw_deg", "pitch_deg", "roll_deg", "step",
                  "eyeBlinkLeft", "mouthSmileRight"]


def analyze_json(path, store, *extra):
    r = run_cli("analyze", path, "--json", *extra, store=store)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_analyze_sample_video_contract(sample_video, store_dir):
    out = analyze_json(sample_video, store_dir)
    for key in ("session_id", "frames", "frames_with_face", "processing_fps", "dropped_frames", "series_path", "summary"):
        assert key in out
    assert out["frames"] == 72 and out["frames_with_face"] == 72 and out["dropped_frames"] == 0
    assert out["processing_fps"] > 0 and out["status"] == "complete"
    table = pq.read_table(out["series_path"])
    assert table.num_rows == 72
    assert set(DESIGN_COLUMNS) <= set(table.column_names)
    frames = table.column("frame").to_pylist()
    assert frames == list(range(72)), "record mode keeps every frame, in order"
    t = np.array(table.column("t_s").to_pylist())
    np.testing.assert_allclose(np.diff(t), 1 / 30, atol=1e-3)
    ap = np.array(table.column("eye_aperture_left_mm").to_pylist(), float)
    status = np.array(table.column("eye_status_left").to_pylist())
    # the person blinks once: those frames say so and carry no lid value, nor does a frame beside them
    # where the lids are still too close to show the iris's edge; every other frame has one
    assert set(status) <= {"ok", "closed", "low_contrast"} and 0 < (status == "closed").sum() <= 4
    closed = np.flatnonzero(status == "closed")
    assert all(np.abs(closed - i).min() <= 2 for i in np.flatnonzero(status == "low_contrast"))
    assert np.isfinite(ap[status == "ok"]).all() and np.isnan(ap[status != "ok"]).all()
    assert 3 < np.nanmedian(ap) < 15
    s = out["summary"]
    assert s["face_found"] and s["measures"]["intercanthal_mm"]["median"] > 20
    with Store(store_dir) as store:
        row = store.get_session(out["session_id"])
        assert row.status == "complete" and row.frames == 72
    mode = sqlite3.connect(store_dir / "facemonitor.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_video_without_a_face_completes_and_says_so(sample, store_dir):
    out = analyze_json(sample("no_face.mp4"), store_dir)
    assert out["frames"] > 0 and out["frames_with_face"] == 0
    assert out["summary"]["face_found"] is False and "no face" in out["summary"]["message"]
    table = pq.read_table(out["series_path"])
    assert not any(table.column("face").to_pylist())
    assert all(v is None for v in table.column("eye_aperture_left_mm").to_pylist())


def test_face_entering_the_frame(sample, store_dir):
    out = analyze_json(sample("noface_face.mov"), store_dir)
    face = pq.read_table(out["series_path"]).column("face").to_pylist()
    assert not any(face[:60]) and all(face[110:160]) and 0 < out["frames_with_face"] < out["frames"]


@pytest.mark.parametrize("kind", ["grayscale", "portrait", "4k"])
def test_grayscale_portrait_and_4k_videos(kind, sample_frames, tmp_path, store_dir):
    frames = sample_frames[:12]
    if kind == "grayscale":
        path = write_video(tmp_path / "gray.mp4", [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames], color=False)
    elif kind == "portrait":  # a 9:16 frame with the face upright, as a phone records it
        path = write_video(tmp_path / "portrait.mp4",
                           [cv2.copyMakeBorder(f[:, 140:500], 140, 140, 0, 0, cv2.BORDER_CONSTANT) for f in frames])
    else:
        path = write_video(tmp_path / "uhd.mp4", [cv2.resize(f, (3840, 2160)) for f in frames[:6]])
    out = analyze_json(path, store_dir)
    assert out["frames_with_face"] == out["frames"] > 0
    assert 3 < out["summary"]["measures"]["eye_aperture_left_mm"]["median"] < 15


def bad_input_cases(tmp_path, sample_video):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("this is not a video\n")
    data = sample_video.read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "folder.mp4").mkdir()
    return {
        "missing": (tmp_path / "missing.mp4", "no such file"),
        "empty": (tmp_path / "empty.mp4", "empty (0 bytes)"),
        "text": (tmp_path / "notes.mp4", "not a readable video"),
        "truncated": (tmp_path / "truncated.mp4", "not a readable video"),
        "directory": (tmp_path / "folder.mp4", "is a directory"),
        "camera": ("7", "camera 7: not found"),
        "url": ("rtsp://127.0.0.1:9/stream", "stream unreachable"),
        "scheme": ("gopher://x/y", "unsupported URL scheme"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "directory", "camera", "url", "scheme"])
def test_bad_input_gives_one_error_line_and_exit_2(case, tmp_path, sample_video, store_dir):
    path, message = bad_input_cases(tmp_path, sample_video)[case]
    r = run_cli("analyze", path, "--json", store=store_dir)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    if (store_dir / "facemonitor.sqlite3").exists():
        with Store(store_dir) as store:
            assert not store.list_sessions("complete")


def test_unknown_backend_is_an_error_naming_what_is_available(sample_video, store_dir):
    r = run_cli("analyze", sample_video, "--backend", "tensorrt", store=store_dir)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "available: mediapipe" in r.stderr


def test_sessions_list_show_export(sample_video, store_dir, tmp_path):
    sid = analyze_json(sample_video, store_dir)["session_id"]
    r = run_cli("sessions", "list", store=store_dir)
    assert r.returncode == 0 and sid in r.stdout and "complete" in r.stdout
    listed = json.loads(run_cli("sessions", "list", "--json", store=store_dir).stdout)
    assert listed[0]["id"] == sid
    shown = json.loads(run_cli("sessions", "show", sid[:17], "--json", store=store_dir).stdout)
    assert shown["id"] == sid and shown["frames_with_face"] == 72
    csv_path, json_path = tmp_path / "s.csv", tmp_path / "s.json"
    assert run_cli("sessions", "export", sid, "--format", "csv", "--out", csv_path, store=store_dir).returncode == 0
    header = csv_path.read_text().splitlines()[0]
    assert "eye_aperture_left_mm" in header and "landmarks_px" not in header
    assert len(csv_path.read_text().splitlines()) == 73
    assert run_cli("sessions", "export", sid, "--format", "json", "--out", json_path, store=store_dir).returncode == 0
    doc = json.loads(json_path.read_text())
    assert doc["session"]["id"] == sid and len(doc["series"]) == 72
    r = run_cli("sessions", "show", "nope", store=store_dir)
    assert r.returncode == 2 and r.stderr.startswith("error: no session 'nope'")


def test_sessions_fatigue_over_a_chosen_stretch_sees_a_planted_ptosis(sample_frames, store_dir, tmp_path):
    """A 12 s recording whose left upper lid sinks 3 px from 4 s on: the fatigue curve of the stretch
    4–12 s shows the left lid's drop (and the right's absence of one); a stretch too short, or back
    to front, is a one-line error."""
    from engines import create_runner
    from monitor.lab import synthetic

    cycle = sample_frames[:16] + sample_frames[14:0:-1]
    frames = [cycle[i % len(cycle)] for i in range(12 * 30)]
    with create_runner("mediapipe") as r:
        lms = [r.infer(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), i * 33 + 1).landmarks_px for i, f in enumerate(frames)]
    planted = [3.0 * min(max((i / 30 - 4) / 6, 0), 1) for i in range(len(frames))]  # px, full from 10 s
    warped = [synthetic.lower_upper_lid(f, lm, "left", d) for f, lm, d in zip(frames, lms, planted)]
    sid = analyze_json(write_video(tmp_path / "ptosis.mp4", warped), store_dir)["session_id"]
    r = run_cli("sessions", "fatigue", sid, "--from", "4", "--json", store=store_dir)
    assert r.returncode == 0, r.stderr
    fat = json.loads(r.stdout)["fatigue"]
    mm_per_px = 0.85  # the sample face: iris ≈ 13.8 px for 11.7 mm
    left, right = fat["left"]["eye_aperture"], fat["right"]["eye_aperture"]
    assert left["drop_mm"] == pytest.approx(3.0 * mm_per_px, rel=0.3), left
    assert abs(right["drop_mm"]) < 0.4, right
    assert left["slope_mm_per_min"] < -5 and len(left["bins"]["t_s"]) >= 15
    text = run_cli("sessions", "fatigue", sid, "--from", "4", "--to", "12", store=store_dir)
    assert text.returncode == 0 and "left eye aperture" in text.stdout and "mm/min" in text.stdout
    for bad, message in ((("--from", "8", "--to", "10"), "less than 6 s"), (("--from", "9", "--to", "3"), "must come after")):
        r = run_cli("sessions", "fatigue", sid, *bad, store=store_dir)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and message in r.stderr, r.stderr


def test_analyze_with_a_steps_file_labels_each_frame(sample_video, store_dir, tmp_path):
    steps = tmp_path / "steps.csv"
    steps.write_text("start_s,end_s,step\n0,1.0,neutral  # the first second\n1.0,2.0,happiness\n")
    out = analyze_json(sample_video, store_dir, "--steps", steps)
    table = pq.read_table(out["series_path"])
    t = np.array(table.column("t_s").to_pylist())
    step = np.array(table.column("step").to_pylist())
    assert (step[t < 1.0] == "neutral").all() and (step[(t >= 1.0) & (t < 2.0)] == "happiness").all()
    assert (step[t >= 2.0] == "").all() and (t >= 2.0).any()
    assert {"neutral", "happiness"} <= set(out["summary"]["steps"])


@pytest.mark.parametrize("text, message", [
    ("0,1,neutral\n1,2,blinking\n", "line 2: unknown step 'blinking'"),
    ("0,2,neutral\n1,3,happiness\n", "steps overlap"),
    ("0;1;neutral\n", "line 1: expected start_s,end_s,step"),
    ("2,1,neutral\n", "line 1: need 0 ≤ start < end"),
    ("# nothing\n", "names no steps"),
])
def test_a_bad_steps_file_is_one_error_line_before_anything_runs(sample_video, store_dir, tmp_path, text, message):
    steps = tmp_path / "steps.csv"
    steps.write_text(text)
    r = run_cli("analyze", sample_video, "--steps", steps, store=store_dir)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (store_dir / "facemonitor.sqlite3").exists()


@pytest.mark.timeout(240)
def test_a_truncated_video_ends_incomplete_with_an_event(sample_frames, tmp_path, store_dir):
    """A video cut short is not `complete`: the session keeps what decoded, says what is missing."""
    pytest.importorskip("av")
    from monitor.lab.attack.media import cut, write_timed_video

    frames = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in sample_frames[:30]]
    bad = cut(write_timed_video(tmp_path / "good.mp4", frames, np.arange(30) / 30), tmp_path / "cut.mp4", 0.5)
    r = run_cli("analyze", bad, "--json", store=store_dir)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("error:") == 1 and "truncated media" in r.stderr and "of 30 the container lists" in r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "incomplete" and 0 < out["frames"] < 30
    with Store(store_dir) as store:
        assert store.get_session(out["session_id"]).status == "incomplete"
        assert "source_truncated" in [e["kind"] for e in store.events(out["session_id"])]


@pytest.mark.timeout(60)
def test_a_source_timeout_that_is_not_positive_is_refused(sample_video, store_dir):
    r = run_cli("analyze", sample_video, "--source-timeout", "0", store=store_dir)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: --source-timeout must be above 0 and at most 50")
    assert not (store_dir / "facemonitor.sqlite3").exists(), "refused before anything was recorded"
