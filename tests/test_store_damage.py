"""A store on a full disk, with damaged sessions, or with a database file that is not ours: refused or
quarantined, never replaced, never blocking the other sessions, never a `complete` that is not."""

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pyarrow.compute as pc
import pytest
from helpers import ROOT, run_cli

from monitor.errors import StoreError
from monitor.lab.attack.store import fill
from monitor.measures.summary import SessionSummary
from monitor.store.db import Store
from monitor.store.series import SeriesWriter


def rows(n, start=0):
    return [{"frame": i, "t_s": i / 30, "face": i % 3 != 0, "faces": 1, "step": ""} for i in range(start, start + n)]


def dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


def stale_session(root: Path, chunks: int = 3, chunk_rows: int = 5) -> str:
    """A session left running by a process that is gone, with whole chunks on disk."""
    with Store(root) as store:
        sid = store.create_session("x.mp4", "record", "mediapipe")
        w = SeriesWriter(store.session_dir(sid), chunk_rows=chunk_rows)
        for r in rows(chunks * chunk_rows):
            w.append(r)
        store.update_progress(sid, chunks * chunk_rows, 999, 0)  # counts the process claimed, not what is on disk
        store.db.execute("UPDATE sessions SET pid=? WHERE id=?", (dead_pid(), sid))
    return sid


def finished_session(root: Path, n: int = 6) -> str:
    with Store(root) as store:
        sid = store.create_session("y.mp4", "record", "mediapipe")
        w = SeriesWriter(store.session_dir(sid), chunk_rows=4)
        for r in rows(n):
            w.append(r)
        w.flush()
        store.finish_session(sid, "complete", frames=n, frames_with_face=w.faces_written, dropped_frames=0,
                             processing_fps=30.0, summary=SessionSummary(True, face_fraction=0.5))
    return sid


def integrity_ok(root: Path) -> bool:
    return sqlite3.connect(root / "facemonitor.sqlite3").execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@contextmanager
def small_disk(tmp_path: Path, size: str = "4m"):
    """A real small filesystem (tmpfs) that the test can fill; skipped where mounting is not permitted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def on_disk(store: Store, sid: str) -> tuple[int, int]:
    t = store.read_series(sid)
    return t.num_rows, int(pc.sum(t.column("face")).as_py() or 0) if t.num_rows else 0


# -- database files that are not ours ---------------------------------------------------------------

@pytest.mark.fast
def test_zero_length_database_beside_recordings_is_refused_not_recreated(tmp_path):
    root = tmp_path / "store"
    finished_session(root)
    db = root / "facemonitor.sqlite3"
    db.write_bytes(b"")  # the tester's truncated database
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    with pytest.raises(StoreError, match="is empty .*refusing to replace it"):
        Store(root)
    assert db.stat().st_size == 0  # left as it was, for the user to restore
    r = run_cli("sessions", "list", store=root, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.fast
def test_empty_database_of_a_store_cut_short_before_any_session_is_set_up(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    (root / "facemonitor.sqlite3").write_bytes(b"")
    with Store(root) as store:
        assert store.list_sessions() == []
        store.create_session("x.mp4", "record", "mediapipe")


@pytest.mark.fast
@pytest.mark.parametrize("kind", ["text", "sqlite"])
def test_foreign_database_is_refused_and_left_unchanged(tmp_path, kind):
    root = tmp_path / "store"
    root.mkdir()
    db = root / "facemonitor.sqlite3"
    if kind == "text":
        db.write_text("these are my notes, not a database\n" * 10)
    else:
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE sessions (who TEXT, minutes INTEGER)")  # same table name, other program
        con.execute("INSERT INTO sessions VALUES ('ann', 30)")
        con.commit()
        con.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(StoreError, match="not a SQLite database|another program"):
        Store(root)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


# -- damaged sessions -----------------------------------------------------------------------------------

@pytest.mark.fast
def test_corrupt_chunk_in_a_stale_session_is_quarantined_and_blocks_nothing(tmp_path):
    root = tmp_path / "store"
    good = finished_session(root)
    sid = stale_session(root)
    bad = Store.__new__(Store)  # only for the path
    bad.root = root
    chunk = bad.session_dir(sid) / "parts" / "part-000001.parquet"
    chunk.write_bytes(chunk.read_bytes()[:40] + b"\0" * 200)  # damaged on disk
    with Store(root) as store:  # opening recovers the others and quarantines the chunk
        row = store.get_session(sid)
        assert row.status == "incomplete" and "part-000001.parquet" in row.error
        assert (row.frames, row.frames_with_face) == on_disk(store, sid) == (10, 7)
        assert store.read_series(sid).column("frame").to_pylist() == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]
        assert (chunk.parent / "part-000001.parquet.damaged").exists()  # kept, never read again
        assert {r.id for r in store.list_sessions()} == {good, sid}
        assert store.read_series(good).num_rows == 6
        assert [e["kind"] for e in store.events(sid)] == ["recovered"]
    with Store(root) as store:  # reported once
        assert len(store.events(sid)) == 1 and store.get_session(sid).status == "incomplete"
    r = run_cli("sessions", "list", "--json", store=root, timeout=60)
    assert r.returncode == 0 and {s["id"] for s in json.loads(r.stdout)} == {good, sid}
    assert integrity_ok(root)


@pytest.mark.fast
def test_corrupt_summary_marks_only_that_session_damaged(tmp_path):
    root = tmp_path / "store"
    good, bad = finished_session(root), finished_session(root)
    with Store(root) as store:
        store.db.execute("UPDATE sessions SET summary='{\"ok\": tru' WHERE id=?", (bad,))
    with Store(root) as store:
        rows_ = {r.id: r for r in store.list_sessions()}
        assert rows_[bad].damaged and "summary unreadable" in rows_[bad].damaged and rows_[bad].status == "complete"
        assert rows_[good].damaged is None and rows_[good].summary is not None
    r = run_cli("sessions", "show", bad, store=root, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.fast
def test_exporting_a_session_whose_series_is_missing_is_an_error(tmp_path):
    root = tmp_path / "store"
    sid = finished_session(root)
    with Store(root) as store:
        Path(store.get_session(sid).series_path).unlink()
        assert "series file missing" in store.get_session(sid).damaged
    out = tmp_path / "out.csv"
    r = run_cli("sessions", "export", sid, "--out", out, store=root, timeout=60)
    assert r.returncode == 2 and not out.exists(), r.stdout
    assert r.stderr.startswith("error: ") and "is missing (6 frames were recorded)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# -- a full disk ----------------------------------------------------------------------------------------

@pytest.mark.fast
def test_store_opens_and_lists_on_a_full_disk_and_recovers_once_there_is_room(tmp_path):
    with small_disk(tmp_path, "2m") as mnt:
        root = mnt / "store"
        sid = stale_session(root, chunks=3, chunk_rows=40)
        (root / "sessions" / sid / ".reserve").unlink()  # no room at all, not even the session's reserve
        filler = fill(mnt)
        with Store(root) as store:  # no write is needed to read
            assert [r.id for r in store.list_sessions()] == [sid]
            assert store.read_series(sid).num_rows == 120
        r = run_cli("sessions", "list", "--json", store=root, timeout=60)
        assert r.returncode == 0, r.stderr
        filler.unlink()
        with Store(root) as store:
            row = store.get_session(sid)
            assert row.status == "incomplete" and (row.frames, row.frames_with_face) == on_disk(store, sid) == (120, 80)
        assert integrity_ok(root)


@pytest.mark.timeout(240)
def test_disk_full_mid_session_ends_incomplete_with_what_is_on_disk(tmp_path, sample):
    with small_disk(tmp_path, "24m") as mnt:
        root = mnt / "store"
        env = dict(os.environ, FACEMONITOR_STORE=str(root))
        env.pop("FACEMONITOR_DEBUG", None)
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "analyze", str(sample("WolfgangLanger_Pexels.mp4")),
                                 "--realtime"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=ROOT)
        deadline = time.monotonic() + 150
        while not list((root / "sessions").glob("*/parts/part-000000.parquet")):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no chunk was written"
            time.sleep(0.1)
        filler = fill(mnt)
        out, err = proc.communicate(timeout=120)
        lines = err.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
        assert "disk is full" in lines[0] and "incomplete" in lines[0]
        r = run_cli("sessions", "list", "--json", store=root, timeout=60)  # still full: listing works
        assert r.returncode == 0, r.stderr
        (listed,) = json.loads(r.stdout)
        assert listed["status"] == "incomplete" and "disk is full" in listed["error"]
        with Store(root) as store:
            assert (listed["frames"], listed["frames_with_face"]) == on_disk(store, listed["id"])
            assert listed["frames"] >= 150
        filler.unlink()
        with Store(root) as store:  # with room again, nothing changes and nothing is lost
            row = store.get_session(listed["id"])
            assert row.status == "incomplete" and (row.frames, row.frames_with_face) == on_disk(store, row.id)
        assert integrity_ok(root)


def _open_and_report(root: str, q) -> None:
    from monitor.store.db import Store

    try:
        with Store(Path(root)) as s:
            q.put(("ok", s.read_only))
    except Exception as e:  # noqa: BLE001 - reported to the test
        q.put(("error", repr(e)))


@pytest.mark.timeout(180)
def test_processes_opening_one_new_store_at_once_all_get_it_writable(tmp_path):
    # two commands setting up one new store race for SQLite's lock and for the added columns; a
    # locked or already-altered database is busy, never read-only (read-only is for a full disk)
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    for i in range(4):
        q = ctx.Queue()
        procs = [ctx.Process(target=_open_and_report, args=(str(tmp_path / f"s{i}"), q)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [q.get(timeout=5) for _ in procs] == [("ok", False)] * 4
