"""Attacks on the session store: `analyze` killed at random moments mid-write, concurrent analyses into
one store, a disk that fills up mid-session (a small tmpfs, where mounting is permitted), damaged
sessions, and database files that are empty or foreign.

A failure is anything that loses or contradicts recorded data: a SQLite integrity check that is not
"ok", a row whose frame counts differ from the series on disk, a session `complete` that did not
finish, a session left `running` after its process is gone, a damaged session that blocks the others,
an empty or foreign database that is used or replaced.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.compute as pc

import monitor
from engines import assets
from monitor.errors import StoreError
from monitor.lab.attack import Finding, scaled
from monitor.measures.summary import SessionSummary
from monitor.store.db import Store
from monitor.store.series import SeriesWriter

AREA = "store"
PROJECT = Path(monitor.__file__).resolve().parents[1]
LONG_VIDEO = "WolfgangLanger_Pexels.mp4"  # 472 frames: several series chunks
SHORT_VIDEO = "single_face.mp4"


def attack(workdir: Path, scale: float) -> list[Finding]:
    rng = random.Random(17)
    return [kills_mid_write(workdir / "kills", scale, rng), concurrent_analyses(workdir / "concurrent", scale),
            disk_full(workdir / "full", scale), damaged_sessions(workdir / "damaged", scale),
            foreign_databases(workdir / "foreign")]


# -- helpers ------------------------------------------------------------------------------------------------

def _cli(args: list[str], store: Path) -> subprocess.Popen:
    env = dict(os.environ, FACEMONITOR_STORE=str(store), PYTHONPATH=str(PROJECT))
    env.pop("FACEMONITOR_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "monitor", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=PROJECT)


def _run(args: list[str], store: Path, timeout: float = 180) -> tuple[int, str, str]:
    proc = _cli(args, store)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return -9, out, err + " (timed out)"
    return proc.returncode, out, err


def _listing(store: Path) -> tuple[list[dict] | None, str]:
    """What `sessions list --json` prints (the store opened and listed, as the command does), or None and
    the error."""
    try:
        with Store(store) as s:
            return [r.as_dict() for r in s.list_sessions(limit=10_000)], ""
    except StoreError as e:
        return None, str(e)


def integrity(store: Path) -> str:
    con = sqlite3.connect(f"file:{store / 'facemonitor.sqlite3'}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def contradictions(store: Store, killed: bool) -> list[str]:
    """What the store's rows say that the series on disk (or the process's fate) contradicts."""
    problems = []
    for row in store.list_sessions(limit=10_000):
        try:
            t = store.read_series(row.id)
        except StoreError as e:
            problems.append(f"{row.id}: {e}")
            continue
        faces = int(pc.sum(t.column("face")).as_py() or 0) if t.num_rows else 0
        if row.status == "running":
            problems.append(f"{row.id}: still running after its process ended")
        elif (row.frames, row.frames_with_face) != (t.num_rows, faces):
            problems.append(f"{row.id}: row says {row.frames} frames/{row.frames_with_face} with a face, "
                            f"disk has {t.num_rows}/{faces}")
        if killed and row.status == "complete":
            problems.append(f"{row.id}: complete although its process was killed")
        if row.status == "complete" and row.frames == 0:
            problems.append(f"{row.id}: complete with 0 frames")
    return problems


def _wait_for(predicate, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _session_started(root: Path) -> bool:
    return any((root / "sessions").glob("*/.reserve")) or any((root / "sessions").glob("*/parts"))


def _finding(probe: str, attempts: int, details: list[str], measured: str = "") -> Finding:
    return Finding(AREA, probe, attempts, len(details), measured, "; ".join(details[:3]))


# -- probes ---------------------------------------------------------------------------------------------------

def kills_mid_write(root: Path, scale: float, rng: random.Random) -> Finding:
    """`analyze` killed (SIGKILL) at a random moment while it writes; the store recovers every time."""
    video = str(assets.sample_path(LONG_VIDEO, progress=False))
    n, bad, kept = scaled(3, scale), [], []
    for i in range(n):
        proc = _cli(["analyze", video, "--json"], root)
        started = _wait_for(lambda: _session_started(root), proc, 120)
        if started and i % 3:  # most kills after the first series chunk, some before it
            _wait_for(lambda: any((root / "sessions").glob("*/parts/part-*.parquet")), proc, 120)
        if started:
            time.sleep(rng.uniform(0.0, 2.0))
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        time.sleep(0.3)  # the engine notices its client is gone
        try:
            with Store(root) as store:
                problems = contradictions(store, killed=False)
                rows = store.list_sessions(limit=10_000)
                if killed and rows and rows[0].status == "complete":
                    problems.append(f"attempt {i}: killed session {rows[0].id} is complete")
                kept.append(rows[0].frames if rows else 0)
        except StoreError as e:
            problems = [f"attempt {i}: the store does not open after a kill: {e}"]
        if (check := integrity(root)) != "ok":
            problems.append(f"attempt {i}: integrity_check {check}")
        bad.extend(problems)
    return _finding("analyze killed mid-write (SIGKILL at random times)", n, bad,
                    f"frames kept per kill: {', '.join(map(str, kept))}")


def concurrent_analyses(root: Path, scale: float) -> Finding:
    """Several `analyze` processes write into one store at once; each session is whole."""
    video = str(assets.sample_path(SHORT_VIDEO, progress=False))
    n = scaled(3, scale, minimum=2)
    procs = [_cli(["analyze", video, "--json"], root) for _ in range(n)]
    bad = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        if p.returncode != 0:
            bad.append(f"exit {p.returncode}: {err.strip()[-200:]}")
    with Store(root) as store:
        bad.extend(contradictions(store, killed=False))
        rows = store.list_sessions()
        if len(rows) != n or any(r.status != "complete" for r in rows):
            bad.append(f"{len(rows)} sessions, statuses {[r.status for r in rows]} for {n} analyses")
    if (check := integrity(root)) != "ok":
        bad.append(f"integrity_check {check}")
    return _finding("concurrent analyses into one store", n, bad)


def fill(mnt: Path) -> Path:
    """Fill a filesystem to the last byte with one file."""
    filler = mnt / f"filler-{uuid.uuid4().hex[:6]}"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\1" * size)
            except OSError:
                pass
    return filler


def disk_full(root: Path, scale: float) -> Finding:
    """The disk fills up after the first series chunk: the session ends incomplete with what is on disk,
    and the store lists and shows while the disk is still full."""
    probe = "disk full mid-session (tmpfs)"
    root.mkdir(parents=True)
    mnt = root / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        return Finding(AREA, probe, 0, 0, "", f"skipped: cannot mount a tmpfs ({r.stderr.strip() or r.returncode})")
    video = str(assets.sample_path(LONG_VIDEO, progress=False))
    n, bad = scaled(1, scale), []
    try:
        for i in range(n):
            store = mnt / f"store{i}"
            proc = _cli(["analyze", video, "--realtime"], store)
            if not _wait_for(lambda: any((store / "sessions").glob("*/parts/part-000000.parquet")), proc, 150):
                bad.append(f"attempt {i}: no chunk was written ({proc.communicate()[1].strip()[-200:]})")
                continue
            filler = fill(mnt)
            _, err = proc.communicate(timeout=120)
            if proc.returncode == 0 or "disk is full" not in err:
                bad.append(f"attempt {i}: exit {proc.returncode}, {err.strip()[-160:]!r}")
            listed, err = _listing(store)
            if listed is None:
                bad.append(f"attempt {i}: sessions list fails on a full disk: {err}")
            elif any(s["status"] == "complete" for s in listed):
                bad.append(f"attempt {i}: a session cut by a full disk is complete")
            filler.unlink()
            with Store(store) as s:
                bad.extend(f"attempt {i}: {p}" for p in contradictions(s, killed=False))
            if (check := integrity(store)) != "ok":
                bad.append(f"attempt {i}: integrity_check {check}")
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    return _finding(probe, n, bad)


def _finished(store: Store, frames: int, chunk_rows: int = 4) -> str:
    sid = store.create_session("synthetic", "record", "mediapipe")
    w = SeriesWriter(store.session_dir(sid), chunk_rows=chunk_rows)
    for i in range(frames):
        w.append({"frame": i, "t_s": i / 30, "face": i % 2 == 0, "faces": 1, "step": ""})
    w.flush()
    store.finish_session(sid, "complete", frames=frames, frames_with_face=w.faces_written, dropped_frames=0,
                         processing_fps=30.0, summary=SessionSummary(True, face_fraction=0.5))
    return sid


def _damage(store: Store, kind: str, rng: random.Random) -> str:
    """A session damaged in one way; returns its id."""
    if kind == "corrupt chunk in a stale session":
        sid = store.create_session("synthetic", "record", "mediapipe")
        w = SeriesWriter(store.session_dir(sid), chunk_rows=5)
        for i in range(15):
            w.append({"frame": i, "t_s": i / 30, "face": True, "faces": 1, "step": ""})
        chunk = store.session_dir(sid) / "parts" / f"part-{rng.randrange(3):06d}.parquet"
        chunk.write_bytes(chunk.read_bytes()[:30] + os.urandom(100))
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        store.db.execute("UPDATE sessions SET pid=? WHERE id=?", (int(dead.stdout), sid))
        return sid
    sid = _finished(store, 8)
    series = store.session_dir(sid) / "series.parquet"
    if kind == "corrupt summary":
        store.db.execute("UPDATE sessions SET summary=? WHERE id=?", ('{"face_fraction": [', sid))
    elif kind == "missing series":
        series.unlink()
    elif kind == "corrupt series":
        series.write_bytes(os.urandom(64))
    return sid


DAMAGE = ("corrupt chunk in a stale session", "corrupt summary", "missing series", "corrupt series")


def damaged_sessions(root: Path, scale: float) -> Finding:
    """Damaged sessions beside healthy ones: the store opens, lists and shows, the healthy ones read whole,
    exporting a damaged series is an error, and a new video is still analysed."""
    rng = random.Random(5)
    bad, attempts = [], 0
    with Store(root) as store:
        healthy = _finished(store, 12)
    for _ in range(scaled(2, scale)):
        for kind in DAMAGE:
            attempts += 1
            with Store(root) as store:
                sid = _damage(store, kind, rng)
            try:
                with Store(root) as store:
                    ids = {r.id for r in store.list_sessions(limit=10_000)}
                    if not {healthy, sid} <= ids:
                        bad.append(f"{kind}: a session is missing from the list")
                    if store.read_series(healthy).num_rows != 12:
                        bad.append(f"{kind}: the healthy session lost rows")
                    row = store.get_session(sid)
                    if kind != "corrupt chunk in a stale session" and not row.damaged and kind != "corrupt series":
                        bad.append(f"{kind}: not marked damaged")
            except StoreError as e:
                bad.append(f"{kind}: the store is blocked: {e}")
                continue
            if kind in ("missing series", "corrupt series"):
                try:  # what `sessions export` reads: a damaged series must be an error, never an empty file
                    with Store(root) as store:
                        t = store.read_series(sid)
                    bad.append(f"{kind}: its series reads as {t.num_rows} rows instead of an error")
                except StoreError:
                    pass
    attempts += 1
    rc, out, err = _run(["analyze", str(assets.sample_path(SHORT_VIDEO, progress=False)), "--json"], root)
    if rc != 0:
        bad.append(f"analyze of a new video in a damaged store: exit {rc}: {err.strip()[-200:]}")
    rc, out, err = _run(["sessions", "list"], root, 60)
    if rc != 0:
        bad.append(f"sessions list in a damaged store: exit {rc}: {err.strip()}")
    if (check := integrity(root)) != "ok":
        bad.append(f"integrity_check {check}")
    return _finding("damaged sessions (chunk, summary, series)", attempts, bad)


def foreign_databases(root: Path) -> Finding:
    """An empty database beside recordings, a text file and another program's SQLite file: refused with
    one error line, never used, replaced or changed."""
    bad = []
    cases = {"zero-length": b"", "text": b"not a database\n" * 8}
    for name, content in cases.items():
        store = root / name
        with Store(store) as s:
            _finished(s, 4)
        db = store / "facemonitor.sqlite3"
        for extra in ("-wal", "-shm"):
            Path(f"{db}{extra}").unlink(missing_ok=True)
        db.write_bytes(content)
        listed, err = _listing(store)
        if listed is not None or db.read_bytes() != content:
            bad.append(f"{name}: opened ({listed!r:.80}), file {'kept' if db.read_bytes() == content else 'changed'}")
    other = root / "other"
    other.mkdir(parents=True)
    con = sqlite3.connect(other / "facemonitor.sqlite3")
    con.execute("CREATE TABLE sessions (who TEXT)")
    con.commit()
    con.close()
    before = (other / "facemonitor.sqlite3").read_bytes()
    rc, _, err = _run(["sessions", "list"], other, 60)  # through the command: one error line, exit 2
    if rc != 2 or not err.startswith("error: ") or len(err.strip().splitlines()) != 1 \
            or (other / "facemonitor.sqlite3").read_bytes() != before:
        bad.append(f"another program's SQLite file: exit {rc}, {err.strip()[:120]!r}")
    return _finding("empty or foreign database file", len(cases) + 1, bad)
