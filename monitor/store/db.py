"""The local session store: SQLite (WAL) for sessions and events, Parquet for per-frame series.

Layout under the store root (default: the user data dir; ``--store`` or FACEMONITOR_STORE):

    facemonitor.sqlite3            sessions, events, people, steps, notes, baselines, clip outputs,
                                   and the cohort ledger (monitor/store/cohorts.py)
    sessions/<id>/parts/*.parquet  series chunks, each written atomically while a session runs
    sessions/<id>/series.parquet   the whole series, written atomically when the session ends
    logs/                          engine logs

Crash safety: a series chunk is written to a temporary file, fsynced and renamed, so every chunk on
disk is whole. A session is marked ``complete`` only after its series file is in place; a session
left ``running`` by a process that no longer exists is marked ``incomplete`` (its chunks merged into
the series, its frame counts taken from what is on disk) the next time the store is opened.

Damage: a database file that is empty while recordings exist, not SQLite, or another program's is
refused, never replaced (``monitor.store.guard``). A failed write (disk full) is a StoreError naming
the cause. Reading never needs a write: a stale session that cannot be recovered now (disk full, a
chunk that cannot be quarantined) is left for later and the store opens anyway. A damaged session (an
unreadable chunk, an unreadable summary, a missing series) is quarantined: its status stays, the
damage is noted on its row (``SessionRow.damaged``) or in its error, and it never blocks the others.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import platformdirs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from calibration.baseline import Baseline
from engines.util import pid_alive
from monitor.errors import StoreError
from monitor.measures.summary import SessionSummary
from monitor.store.guard import check_database_file, check_schema, describe_write_error, writing
from monitor.store.people import check_person
from monitor.store.series import Merged, merge_session_parts, read_parts

log = logging.getLogger("facemonitor.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'incomplete', 'failed')),
    source TEXT NOT NULL,
    mode TEXT NOT NULL,
    backend TEXT NOT NULL,
    person TEXT,
    pid INTEGER,
    host TEXT,
    frames INTEGER NOT NULL DEFAULT 0,
    frames_with_face INTEGER NOT NULL DEFAULT 0,
    dropped_frames INTEGER NOT NULL DEFAULT 0,
    processing_fps REAL,
    series_path TEXT,
    summary TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    at TEXT NOT NULL,
    frame INTEGER,
    kind TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS events_session ON events(session_id);
CREATE TABLE IF NOT EXISTS baselines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    person TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    created_at TEXT NOT NULL,
    iris_mm REAL,
    medians TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS baselines_person ON baselines(person);
CREATE TABLE IF NOT EXISTS people (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    iris_mm REAL
);
CREATE TABLE IF NOT EXISTS session_steps (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    idx INTEGER NOT NULL,
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    started_s REAL,
    ended_s REAL,
    counted_s REAL NOT NULL,
    attempts INTEGER NOT NULL,
    quality_lost_s REAL NOT NULL,
    PRIMARY KEY (session_id, idx)
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    at TEXT NOT NULL,
    author TEXT,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_session ON notes(session_id);
CREATE TABLE IF NOT EXISTS clip_outputs (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    first_frame INTEGER NOT NULL,
    last_frame INTEGER NOT NULL,
    p REAL,
    ms REAL,
    PRIMARY KEY (session_id, last_frame)
);
"""


# columns added after the first release: (name, SQL type); added to older stores when opened
SESSION_COLUMNS_ADDED = (("protocol", "TEXT"), ("protocol_status", "TEXT"), ("video_path", "TEXT"))
# step records: whether the frames showed what the step asked (1/0, NULL when not checked) and why
STEP_COLUMNS_ADDED = (("performed", "INTEGER"), ("reason", "TEXT"))
MAX_NOTE_CHARS = 10_000
LOCKED_RETRIES = 40  # opening a store another process is setting up: about 40 s of tries at most
STATUSES = ("running", "complete", "incomplete", "failed")
# disk space set aside in each running session's folder and freed when it ends, so that the end of a
# session can still be recorded (and its series merged when small) after the disk filled up
RESERVE_BYTES = 256 * 1024
RESERVE_NAME = ".reserve"


def default_root() -> Path:
    env = os.environ.get("FACEMONITOR_STORE")
    return Path(env) if env else Path(platformdirs.user_data_dir("facemonitor"))


def series_counts(path: Path | None) -> tuple[int, int]:
    """(frames, frames with a face) of a series file, None → (0, 0)."""
    if path is None:
        return 0, 0
    face = pq.read_table(path, columns=["face"]).column("face")
    return face.length(), int(pc.sum(face.fill_null(False)).as_py() or 0)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class SessionRow:
    id: str
    created_at: str
    finished_at: str | None
    status: str
    source: str
    mode: str
    backend: str
    person: str | None
    frames: int
    frames_with_face: int
    dropped_frames: int
    processing_fps: float | None
    series_path: str | None
    summary: SessionSummary | None
    error: str | None
    protocol: str | None = None
    protocol_status: str | None = None  # done | aborted | running, for sessions run by the app
    video_path: str | None = None  # the raw video, kept only when the person opted in
    damaged: str | None = None  # what is wrong with a quarantined session (unreadable summary, missing series)

    def as_dict(self) -> dict:
        return dict(self.__dict__, summary=self.summary.as_dict() if self.summary else None)


class Store:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root else default_root()
        self.problems: list[str] = []  # what could not be done on opening (a stale session left for later)
        path = self.root / "facemonitor.sqlite3"
        check_database_file(path, self.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "sessions").mkdir(exist_ok=True)
            (self.root / "logs").mkdir(exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the store at {self.root}: {e}") from None
        self.read_only = False  # True when only reading was possible (a full disk): writes fail, reads work
        try:
            self._check_and_prepare(path)
        except (OSError, sqlite3.Error, StoreError) as e:
            self.db.close()
            if isinstance(e, StoreError):
                raise
            self.db = self._open_read_only(path, e)
            self.read_only = True
            self.problems.append(f"the store is read-only for now ({e}): sessions can be listed and shown")
            log.warning("the store at %s is read-only for now: %s", self.root, e)
            return
        self.recover_stale()

    def _check_and_prepare(self, path: Path) -> None:
        """check_schema and _prepare, tried again while another process holds the database's lock
        (two commands creating one new store at once: switching it to WAL needs the lock); a locked
        database is busy, not read-only."""
        for attempt in range(LOCKED_RETRIES):
            try:
                check_schema(self.db, path, self.root)
                self._prepare()
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                if attempt == LOCKED_RETRIES - 1:
                    raise StoreError(f"the store at {self.root} stayed locked by another process: {e}") from None
                time.sleep(0.05 * (attempt + 1))

    def _open_read_only(self, path: Path, cause: BaseException) -> sqlite3.Connection:
        """The database opened for reading only, when it cannot be opened for writing (no room for SQLite's
        shared-memory file on a full disk). Immutable mode, which needs no file of its own, is used only
        when no write-ahead log holds changes not yet in the database."""
        wal = Path(f"{path}-wal")
        uris = [f"file:{path}?mode=ro"]
        if not wal.exists() or wal.stat().st_size == 0:
            uris.append(f"file:{path}?immutable=1")
        for uri in uris:
            db = None
            try:
                db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
                check_schema(db, path, self.root)
                return db
            except sqlite3.Error:
                if db is not None:
                    db.close()
        raise StoreError(f"cannot open the store at {self.root}: {describe_write_error(cause)}") from None

    def _prepare(self) -> None:
        """WAL mode and the tables (each a no-op, so no write, when the store is already set up)."""
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master")}
        if not {"sessions", "events", "baselines", "people", "session_steps", "notes", "clip_outputs",
                "events_session", "baselines_person", "notes_session"} <= tables:
            self.db.executescript(SCHEMA)
        for table, added in (("sessions", SESSION_COLUMNS_ADDED), ("session_steps", STEP_COLUMNS_ADDED)):
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            for name, sql_type in added:
                if name not in have:
                    self._add_column(table, name, sql_type)

    def _add_column(self, table: str, name: str, sql_type: str) -> None:
        """Add a column an older store lacks; another process adding it at the same moment is fine."""
        try:
            self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")
        except sqlite3.OperationalError as e:
            if "duplicate column name" not in str(e):
                raise

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def session_dir(self, session_id: str) -> Path:
        return self.root / "sessions" / session_id

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- sessions -------------------------------------------------------------------------------
    def create_session(self, source: str, mode: str, backend: str, person: str | None = None) -> str:
        if person is not None:
            check_person(person)
        sid = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        with writing("start a session"), self.db:
            self.session_dir(sid).mkdir(parents=True)
            with open(self.session_dir(sid) / RESERVE_NAME, "wb") as f:  # real blocks, not a sparse file
                f.write(b"\0" * RESERVE_BYTES)
                os.fsync(f.fileno())
            self.db.execute(
                "INSERT INTO sessions (id, created_at, status, source, mode, backend, person, pid, host)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (sid, now_iso(), source, mode, backend, person, os.getpid(), socket.gethostname()),
            )
        return sid

    def add_events(self, session_id: str, events: list[tuple[str, str | None, int | None]]) -> None:
        """Add (kind, detail, frame) events."""
        if not events:
            return
        now = now_iso()
        with writing("record the session's events"), self.db:
            self.db.executemany(
                "INSERT INTO events (session_id, at, frame, kind, detail) VALUES (?, ?, ?, ?, ?)",
                [(session_id, now, frame, kind, detail) for kind, detail, frame in events],
            )

    def add_clip_outputs(self, session_id: str, outputs: list[dict]) -> None:
        """The 3D-CNN's clip outputs (first_frame, last_frame, p, ms); a repeated clip is written once."""
        if not outputs:
            return
        with writing("record the 3D-CNN's outputs"), self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO clip_outputs (session_id, first_frame, last_frame, p, ms) VALUES (?, ?, ?, ?, ?)",
                [(session_id, o["first_frame"], o["last_frame"], o["p"], o["ms"]) for o in outputs])

    def clip_outputs(self, session_id: str) -> list[dict]:
        rows = self.db.execute("SELECT first_frame, last_frame, p, ms FROM clip_outputs WHERE session_id=? "
                               "ORDER BY last_frame", (session_id,))
        return [dict(zip(("first_frame", "last_frame", "p", "ms"), r)) for r in rows]

    def release_reserve(self, session_id: str) -> None:
        """Free the space set aside when the session started (see RESERVE_BYTES)."""
        try:
            (self.session_dir(session_id) / RESERVE_NAME).unlink(missing_ok=True)
        except OSError:
            pass

    def update_progress(self, session_id: str, frames: int, frames_with_face: int, dropped: int) -> None:
        with writing("record the session's progress"), self.db:
            self.db.execute(
                "UPDATE sessions SET frames=?, frames_with_face=?, dropped_frames=? WHERE id=? AND status='running'",
                (frames, frames_with_face, dropped, session_id),
            )

    def finish_session(self, session_id: str, status: str, *, frames: int, frames_with_face: int,
                       dropped_frames: int, processing_fps: float | None, summary: SessionSummary | None,
                       error: str | None = None) -> Path | None:
        """Merge the series chunks, then record the final status (after the series is on disk). When the
        merge fails (disk full) or finds damaged chunks, the session is recorded ``incomplete`` with the
        reason, its chunks kept (read from there), and StoreError is raised after the row is written."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"bad final status {status!r}")
        problem = None
        try:
            merged = merge_session_parts(self.session_dir(session_id))
        except StoreError as e:
            merged, problem = Merged(None), f"{e}; the chunks already written are kept"
        if merged.damaged:
            problem = f"damaged series chunks quarantined: {', '.join(merged.damaged)}"
            frames, frames_with_face = series_counts(merged.path)
        if problem:
            status, error = "incomplete", "; ".join(x for x in (error, problem) if x)
        series = merged.path
        with writing(f"record the end of session {session_id}"), self.db:
            self.db.execute(
                "UPDATE sessions SET status=?, finished_at=?, frames=?, frames_with_face=?, dropped_frames=?,"
                " processing_fps=?, series_path=?, summary=?, error=? WHERE id=?",
                (status, now_iso(), frames, frames_with_face, dropped_frames, processing_fps,
                 str(series) if series else None, json.dumps(summary.as_dict()) if summary is not None else None,
                 error, session_id),
            )
        if problem:
            raise StoreError(problem)
        return series

    def recover_stale(self) -> list[str]:
        """Mark sessions left running by a dead process on this host as incomplete, their frame counts
        taken from the series on disk. A session that cannot be recovered now (disk full) stays
        ``running`` and is tried again next time; reading the store never depends on it."""
        try:
            rows = self.db.execute("SELECT id, pid, host FROM sessions WHERE status='running'").fetchall()
        except sqlite3.Error as e:
            self.problems.append(f"cannot look for stale sessions: {e}")
            return []
        recovered = []
        for sid, pid, host in rows:
            if host == socket.gethostname() and not pid_alive(pid):
                try:
                    self._recover(sid, pid)
                except (StoreError, OSError, sqlite3.Error, pa.ArrowException) as e:
                    self.problems.append(f"session {sid} is left running for now: {e}")
                    log.warning("session %s is left running for now: %s", sid, e)
                    continue
                recovered.append(sid)
        return recovered

    def _recover(self, sid: str, pid: int) -> None:
        self.release_reserve(sid)
        merged = merge_session_parts(self.session_dir(sid)) if self.session_dir(sid).exists() else Merged(None)
        n, faces = series_counts(merged.path)
        error = "the recording process ended before the session finished"
        detail = f"process {pid} gone; {n} frames kept"
        if merged.damaged:
            error += f"; damaged series chunks quarantined: {', '.join(merged.damaged)}"
            detail += f"; damaged chunks quarantined: {', '.join(merged.damaged)}"
        with writing(f"recover session {sid}"), self.db:
            self.db.execute(
                "UPDATE sessions SET status='incomplete', finished_at=?, series_path=?, frames=?, frames_with_face=?,"
                " error=CASE WHEN error IS NULL THEN ? ELSE error || '; ' || ? END WHERE id=? AND status='running'",
                (now_iso(), str(merged.path) if merged.path else None, n, faces, error, error, sid),
            )
            self.db.execute(
                "INSERT INTO events (session_id, at, kind, detail) VALUES (?, ?, 'recovered', ?)",
                (sid, now_iso(), detail),
            )

    def _row(self, r: tuple) -> SessionRow:
        """A session row; a summary that cannot be read or a series file that is gone marks it damaged
        (quarantined: listed and shown with the damage, never an error for the whole store)."""
        (sid, created, finished, status, source, mode, backend, person, frames, fwf, dropped, fps,
         series, summary, error, protocol, protocol_status, video) = r
        damaged, parsed = [], None
        if summary:
            try:
                parsed = SessionSummary.from_dict(json.loads(summary))
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                damaged.append(f"summary unreadable ({type(e).__name__})")
        if status != "running" and series and frames and not Path(series).exists():
            damaged.append(f"series file missing ({series})")
        return SessionRow(sid, created, finished, status, source, mode, backend, person, frames, fwf, dropped,
                          fps, series, parsed, error, protocol, protocol_status, video, "; ".join(damaged) or None)

    _COLUMNS = ("id, created_at, finished_at, status, source, mode, backend, person, frames, frames_with_face,"
                " dropped_frames, processing_fps, series_path, summary, error, protocol, protocol_status, video_path")

    def list_sessions(self, status: str | None = None, limit: int = 100, *, person: str | None = None,
                      protocol: str | None = None, since: str | None = None, until: str | None = None,
                      oldest_first: bool = False) -> list[SessionRow]:
        """Sessions, newest first, filtered by status, person, protocol and creation date
        (ISO dates, ``until`` inclusive of its whole day)."""
        where, args = [], []
        for column, value in (("status", status), ("person", person), ("protocol", protocol)):
            if value:
                where.append(f"{column}=?")
                args.append(value)
        if since:
            where.append("created_at >= ?")
            args.append(since)
        if until:
            where.append("substr(created_at, 1, 10) <= ?")
            args.append(until[:10])
        q = f"SELECT {self._COLUMNS} FROM sessions" + (" WHERE " + " AND ".join(where) if where else "")
        q += f" ORDER BY created_at {'ASC' if oldest_first else 'DESC'} LIMIT ?"
        return [self._row(r) for r in self.db.execute(q, (*args, limit))]

    # -- app sessions: protocol, steps, video, people, notes ------------------------------------------
    def set_protocol(self, session_id: str, protocol: str, status: str) -> None:
        with self.db:
            self.db.execute("UPDATE sessions SET protocol=?, protocol_status=? WHERE id=?", (protocol, status, session_id))

    def set_video(self, session_id: str, path: Path) -> None:
        with self.db:
            self.db.execute("UPDATE sessions SET video_path=? WHERE id=?", (str(path), session_id))

    def save_steps(self, session_id: str, records) -> None:
        """Replace the session's per-step records (protocol_run.StepRecord, times in session seconds;
        status ``not_performed`` with ``performed`` false for a step whose frames did not show it)."""
        def performed(r) -> int | None:
            p = getattr(r, "performed", None)
            return None if p is None else int(bool(p))

        with writing("save the session's steps"), self.db:
            self.db.execute("DELETE FROM session_steps WHERE session_id=?", (session_id,))
            self.db.executemany(
                "INSERT INTO session_steps (session_id, idx, step, status, started_s, ended_s, counted_s, attempts,"
                " quality_lost_s, performed, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(session_id, r.index, r.step, r.status, r.started_s, r.ended_s, round(r.counted_s, 3), r.attempts,
                  round(r.quality_lost_s, 3), performed(r), getattr(r, "reason", "") or None) for r in records])

    def steps(self, session_id: str) -> list[dict]:
        cols = ("idx", "step", "status", "started_s", "ended_s", "counted_s", "attempts", "quality_lost_s",
                "performed", "reason")
        rows = self.db.execute(f"SELECT {', '.join(cols)} FROM session_steps WHERE session_id=? ORDER BY idx",
                               (session_id,))
        return [dict(zip(cols, r), performed=None if r[8] is None else bool(r[8])) for r in rows]

    def add_person(self, person: str, iris_mm: float | None = None) -> str:
        """Register a pseudonymous person id (letters, digits, '-', '_', '.'; no names needed)."""
        check_person(person)
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO people (id, created_at, iris_mm) VALUES (?,?,?)",
                            (person, now_iso(), iris_mm))
        return person

    def people(self) -> list[str]:
        """Registered people and anyone a session was filed under."""
        rows = self.db.execute("SELECT id FROM people UNION SELECT person FROM sessions WHERE person IS NOT NULL "
                               "ORDER BY 1")
        return [r[0] for r in rows]

    def add_note(self, session_id: str, text: str, author: str | None = None) -> dict:
        text = (text or "").strip()
        if not text:
            raise StoreError("a note needs some text")
        if len(text) > MAX_NOTE_CHARS:
            raise StoreError(f"a note is at most {MAX_NOTE_CHARS} characters")
        row = self.get_session(session_id)
        at = now_iso()
        with self.db:
            self.db.execute("INSERT INTO notes (session_id, at, author, text) VALUES (?,?,?,?)",
                            (row.id, at, (author or "").strip()[:60] or None, text))
        return {"at": at, "author": author, "text": text}

    def notes(self, session_id: str) -> list[dict]:
        rows = self.db.execute("SELECT at, author, text FROM notes WHERE session_id=? ORDER BY id", (session_id,))
        return [dict(zip(("at", "author", "text"), r)) for r in rows]

    @property
    def exports_dir(self) -> Path:
        d = self.root / "exports"
        d.mkdir(exist_ok=True)
        return d

    def get_session(self, ref: str) -> SessionRow:
        """A session by id or unique id prefix."""
        rows = self.db.execute(
            f"SELECT {self._COLUMNS} FROM sessions WHERE id = ? OR id LIKE ? ORDER BY id", (ref, ref + "%")
        ).fetchall()
        exact = [r for r in rows if r[0] == ref]
        if exact:
            return self._row(exact[0])
        if not rows:
            raise StoreError(f"no session {ref!r} in {self.root}")
        if len(rows) > 1:
            raise StoreError(f"{ref!r} matches {len(rows)} sessions; give more of the id")
        return self._row(rows[0])

    def save_baseline(self, person: str, session_id: str, medians: dict, iris_mm: float | None = None):
        """Keep a neutral baseline for a person (the newest one is used from then on)."""

        if not person:
            raise StoreError("a baseline needs a person id")
        check_person(person)
        if not medians:
            raise StoreError("a baseline needs at least one measured value")
        at = now_iso()
        with writing(f"save the baseline of {person}"):
            self.db.execute("INSERT INTO baselines (person, session_id, created_at, iris_mm, medians) VALUES (?,?,?,?,?)",
                            (person, session_id, at, iris_mm, json.dumps(medians)))
        return Baseline(person, session_id, at, dict(medians), iris_mm)

    def latest_baseline(self, person: str | None):
        if not person:
            return None
        r = self.db.execute("SELECT person, session_id, created_at, iris_mm, medians FROM baselines WHERE person=? "
                            "ORDER BY id DESC LIMIT 1", (person,)).fetchone()
        return None if r is None else Baseline(r[0], r[1], r[2], json.loads(r[4]), r[3])

    def events(self, session_id: str) -> list[dict]:
        rows = self.db.execute(
            "SELECT at, frame, kind, detail FROM events WHERE session_id=? ORDER BY id", (session_id,)
        )
        return [dict(zip(("at", "frame", "kind", "detail"), r)) for r in rows]

    def read_series(self, session_id: str) -> pa.Table:
        """The session's per-frame series: its series file, or the chunks of a session still running (or
        one whose merge failed). A finished session whose series is gone or unreadable is a StoreError."""
        d = self.session_dir(session_id)
        if (d / "series.parquet").exists():
            try:
                return pq.read_table(d / "series.parquet")
            except (pa.ArrowException, OSError) as e:
                raise StoreError(f"session {session_id} is damaged: its series file cannot be read ({e})") from None
        tables, _ = read_parts(d)  # unreadable chunks are left out (and quarantined when the session is merged)
        if tables:
            return pa.concat_tables(tables, promote_options="default")
        row = self.db.execute("SELECT status, frames, series_path FROM sessions WHERE id=?", (session_id,)).fetchone()
        if row is not None and row[0] != "running" and row[1]:
            raise StoreError(f"session {session_id} is damaged: its series file "
                             f"{row[2] or d / 'series.parquet'} is missing ({row[1]} frames were recorded)")
        return pa.table({})
