"""The session store: SQLite rows, crash-safe Parquet chunks, merging and the recovery of stale sessions."""

import json
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from monitor.errors import StoreError
from monitor.measures.summary import SessionSummary, StepSummary
from monitor.protocol.run import StepRecord
from monitor.store.db import Store
from monitor.store.series import SCHEMA, SeriesWriter, build_table, merge_parts

pytestmark = pytest.mark.fast


def rows(n, start=0):
    return [{"frame": i, "t_s": i / 30, "face": i % 2 == 0, "faces": 1, "step": "",
             "eye_aperture_left_mm": 9.0 if i % 2 == 0 else None} for i in range(start, start + n)]


def test_series_table_nulls_and_units_survive_parquet(tmp_path):
    lm = np.arange(478 * 3, dtype=np.float32).reshape(478, 3)
    t = build_table(rows(2) + [{"frame": 2, "eye_aperture_left_mm": float("nan"), "eye_status_left": "closed"}],
                    [lm, None, None])
    pq.write_table(t, tmp_path / "s.parquet")
    back = pq.read_table(tmp_path / "s.parquet")
    assert back.schema.names == SCHEMA.names
    for name in SCHEMA.names[:-1]:  # units and definitions are kept beside the values
        assert back.schema.field(name).equals(SCHEMA.field(name), check_metadata=True), name
    assert back.schema.field("eye_aperture_left_mm").metadata[b"unit"] == "mm".encode()
    assert back.column("eye_aperture_left_mm").to_pylist() == [9.0, None, None]  # NaN is stored as null
    assert back.column("face").to_pylist() == [True, False, None] and back.column("step").to_pylist() == ["", "", None]
    assert back.column("eye_status_left").to_pylist() == [None, None, "closed"]
    assert back.column("landmarks_px").to_pylist()[1] is None
    np.testing.assert_array_equal(np.array(back.column("landmarks_px").to_pylist()[0]), lm.ravel())


def test_chunks_are_whole_and_merge_in_order(tmp_path):
    with Store(tmp_path) as store:
        sid = store.create_session("x.mp4", "record", "mediapipe")
        w = SeriesWriter(store.session_dir(sid), chunk_rows=10)
        for r in rows(25):
            w.append(r)
        assert len(list((store.session_dir(sid) / "parts").glob("*.parquet"))) == 2  # 20 rows on disk
        w.flush()
        summary = SessionSummary(True, face_fraction=0.52, measures={"eye_aperture_left_mm": {"median": 9.0}},
                                 steps={"neutral": StepSummary(13, 0.8, {"eye_aperture_left_mm": 9.0})})
        path = store.finish_session(sid, "complete", frames=25, frames_with_face=13, dropped_frames=0,
                                    processing_fps=30.0, summary=summary)
        assert pq.read_table(path).column("frame").to_pylist() == list(range(25))
        assert not list((store.session_dir(sid) / "parts").glob("*.parquet"))  # merged, chunks removed
        row = store.get_session(sid)
        assert row.status == "complete" and row.frames == 25 and row.frames_with_face == 13
        assert row.summary == summary and row.summary.step("neutral").frames == 13
        assert row.as_dict()["summary"]["steps"]["neutral"]["medians"] == {"eye_aperture_left_mm": 9.0}


def test_stale_running_session_from_a_dead_process_is_recovered(tmp_path):
    with Store(tmp_path) as store:
        sid = store.create_session("x.mp4", "record", "mediapipe")
        w = SeriesWriter(store.session_dir(sid), chunk_rows=5)
        for r in rows(12):
            w.append(r)  # 10 rows flushed, 2 lost with the "crash"
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip()
        store.db.execute("UPDATE sessions SET pid=? WHERE id=?", (int(dead), sid))
    with Store(tmp_path) as store:
        row = store.get_session(sid)
        assert row.status == "incomplete" and row.frames == 10 and "ended before the session finished" in row.error
        assert pq.read_table(row.series_path).column("frame").to_pylist() == list(range(10))
        assert [e["kind"] for e in store.events(sid)] == ["recovered"]
        assert f"process {dead} gone; 10 frames kept" == store.events(sid)[0]["detail"]
    with Store(tmp_path) as store:  # recovered once: opening again changes nothing
        assert store.recover_stale() == [] and len(store.events(sid)) == 1


def test_running_session_of_a_live_process_is_left_alone(tmp_path):
    with Store(tmp_path) as store:
        sid = store.create_session("x.mp4", "record", "mediapipe")
    with Store(tmp_path) as store:
        assert store.get_session(sid).status == "running"  # our own pid is alive


def test_bad_final_status_and_lookup_errors(tmp_path):
    with Store(tmp_path) as store:
        sid = store.create_session("x.mp4", "record", "mediapipe")
        with pytest.raises(ValueError):
            store.finish_session(sid, "running", frames=0, frames_with_face=0, dropped_frames=0,
                                 processing_fps=None, summary=None)
        with pytest.raises(StoreError, match="no session"):
            store.get_session("zzz")


def test_unwritable_store_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(blocker / "store")


def test_merge_without_chunks(tmp_path):
    assert merge_parts(tmp_path) is None
    (tmp_path / "parts").mkdir()
    pq.write_table(build_table(rows(3), [None] * 3), tmp_path / "series.parquet")
    assert merge_parts(tmp_path) == tmp_path / "series.parquet"  # already merged: kept as it is


def test_sessions_are_listed_filtered_and_found_by_prefix(tmp_path):
    with Store(tmp_path) as store:
        a = store.create_session("a.mp4", "record", "mediapipe", person="P1")
        time.sleep(0.01)
        b = store.create_session("b.mp4", "live", "onnx")
        store.finish_session(a, "complete", frames=3, frames_with_face=3, dropped_frames=0, processing_fps=None,
                             summary=None)
        assert [r.id for r in store.list_sessions()] == [b, a]  # newest first
        assert [r.id for r in store.list_sessions(oldest_first=True)] == [a, b]
        assert [r.id for r in store.list_sessions("complete")] == [a]
        assert [r.id for r in store.list_sessions(person="P1")] == [a] and store.people() == ["P1"]
        assert store.list_sessions(until="2000-01-01") == []
        assert store.get_session(b[:-1]).id == b  # a unique prefix
        with pytest.raises(StoreError, match="matches 2 sessions; give more of the id"):
            store.get_session("")  # every id starts with ""
        assert store.get_session(a).summary is None and store.get_session(b).status == "running"


def test_events_clips_steps_notes_people_and_baselines(tmp_path):
    with Store(tmp_path) as store:
        sid = store.create_session("x.mp4", "record", "mediapipe")
        store.add_events(sid, [("source_frozen", "no new frame for 2 s", 40), ("frame_dropped", None, 41)])
        assert [(e["kind"], e["frame"], e["detail"]) for e in store.events(sid)] == [
            ("source_frozen", 40, "no new frame for 2 s"), ("frame_dropped", 41, None)]
        clips = [{"first_frame": 0, "last_frame": 15, "p": 0.25, "ms": 12.0},
                 {"first_frame": 8, "last_frame": 23, "p": None, "ms": 11.0}]
        store.add_clip_outputs(sid, clips)
        store.add_clip_outputs(sid, clips[:1])  # a clip seen twice is written once
        assert store.clip_outputs(sid) == clips
        store.save_steps(sid, [StepRecord(0, "neutral", "done", 1.0, 9.2, 8.0004, 1, 0.2),
                               StepRecord(1, "gaze_left", "skipped")])
        steps = store.steps(sid)
        assert [(r["step"], r["status"], r["counted_s"]) for r in steps] == [("neutral", "done", 8.0),
                                                                             ("gaze_left", "skipped", 0.0)]
        note = store.add_note(sid, "  patient tired  ", author="dr x")
        assert note["text"] == "patient tired" and store.notes(sid)[0]["author"] == "dr x"
        with pytest.raises(StoreError, match="a note needs some text"):
            store.add_note(sid, "   ")
        with pytest.raises(StoreError, match="person id must be"):
            store.add_person("not ok!")
        store.add_person("P-7", iris_mm=12.1)
        assert store.latest_baseline("P-7") is None
        store.save_baseline("P-7", sid, {"eye_aperture_left_mm": 9.0})
        store.save_baseline("P-7", sid, {"eye_aperture_left_mm": 9.5}, iris_mm=12.1)
        base = store.latest_baseline("P-7")
        assert base.medians == {"eye_aperture_left_mm": 9.5} and base.iris_mm == 12.1  # the newest
        with pytest.raises(StoreError, match="at least one measured value"):
            store.save_baseline("P-7", sid, {})
        assert json.loads(json.dumps(base.as_dict()))["session_id"] == sid
