"""Killing the engine or the recording process never corrupts the store or fakes a complete session."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from helpers import ROOT

from monitor.store.db import Store


def start_analyze(path, store):
    env = dict(os.environ, FACEMONITOR_STORE=str(store))
    return subprocess.Popen([sys.executable, "-m", "monitor", "analyze", str(path), "--json", "--realtime"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def wait_for_frames(store, proc, min_frames=40, timeout=60):
    db = store / "facemonitor.sqlite3"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        if db.exists():
            try:
                row = sqlite3.connect(db).execute("SELECT id, frames FROM sessions").fetchone()
            except sqlite3.OperationalError:
                row = None
            if row and row[1] >= min_frames:
                return row[0]
        time.sleep(0.2)
    pytest.fail("analysis made no progress")


def engine_pid(parent: int) -> int:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    assert out, "no engine child process"
    return int(out[0])


def test_engine_killed_mid_analysis(sample, store_dir):
    proc = start_analyze(sample("WolfgangLanger_Pexels.mp4"), store_dir)
    sid = wait_for_frames(store_dir, proc)
    os.kill(engine_pid(proc.pid), signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the engine process died") and "incomplete" in lines[0]
    with Store(store_dir) as store:
        row = store.get_session(sid)
        assert row.status == "incomplete" and "engine" in row.error
        table = pq.read_table(row.series_path)
        assert 40 <= table.num_rows == row.frames < 472
        assert table.column("frame").to_pylist() == list(range(table.num_rows))
        assert any(e["kind"] == "session_error" for e in store.events(sid))
    assert sqlite3.connect(store_dir / "facemonitor.sqlite3").execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_recording_process_killed_leaves_an_incomplete_session(sample, store_dir):
    proc = start_analyze(sample("WolfgangLanger_Pexels.mp4"), store_dir)
    sid = wait_for_frames(store_dir, proc, min_frames=160)
    child = engine_pid(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}") and \
            open(f"/proc/{child}/stat").read().split()[2] != "Z":
        time.sleep(0.2)
    stat = open(f"/proc/{child}/stat").read().split()[2] if os.path.exists(f"/proc/{child}") else "gone"
    assert stat in ("Z", "gone"), "the engine stops by itself once its client is gone"
    with Store(store_dir) as store:  # opening the store recovers the stale session
        row = store.get_session(sid)
        assert row.status == "incomplete"
        table = pq.read_table(row.series_path)
        assert table.num_rows >= 150, "every whole chunk written before the kill is kept"
        assert not list((store.session_dir(sid) / "parts").glob("*.parquet"))
        assert any(e["kind"] == "recovered" for e in store.events(sid))
    assert sqlite3.connect(store_dir / "facemonitor.sqlite3").execute("PRAGMA integrity_check").fetchone()[0] == "ok"
