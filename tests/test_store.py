import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from monitor.errors import StoreError
from monitor.measures.summary import SessionSummary
from monitor.store.db import Store
from monitor.store.series import SCHEMA, SeriesWriter, build_table


def rows(n, start=0):
    return [{"frame": i, "t_s": i / 30, "face": i % 2 == 0, "faces": 1, "step": "",
             "eye_aperture_left_mm": 9.0 if i % 2 == 0 else None} for i in range(start, start + n)]


def test_series_table_schema_and_nulls():
    lm = [np.ones((478, 3), np.float32), None]
    t = build_table(rows(2), lm)
    assert t.schema == SCHEMA
    assert t.column("eye_aperture_left_mm").to_pylist() == [9.0, None]
    assert t.column("landmarks_px").to_pylist()[1] is None
    assert len(t.column("landmarks_px").to_pylist()[0]) == 1434


def test_chunks_are_whole_and_merge_in_order(tmp_path):
    with Store(tmp_path) as store:
        sid = store.create_session("x.mp4", "record", "mediapipe")
        w = SeriesWriter(store.session_dir(sid), chunk_rows=10)
        for r in rows(25):
            w.append(r)
        assert len(list((store.session_dir(sid) / "parts").glob("*.parquet"))) == 2  # 20 rows on disk
        w.flush()
        path = store.finish_session(sid, "complete", frames=25, frames_with_face=13, dropped_frames=0,
                                    processing_fps=30.0, summary=SessionSummary(False, "a stand-in summary"))
        assert pq.read_table(path).column("frame").to_pylist() == list(range(25))
        row = store.get_session(sid)
        assert row.status == "complete" and row.summary == SessionSummary(False, "a stand-in summary")


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
        assert row.status == "incomplete" and row.frames == 10
        assert pq.read_table(row.series_path).num_rows == 10


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
