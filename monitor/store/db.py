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
the series) the next time the store is opened.
"""

from __future__ import annotations

import json
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
import pyarrow.parquet as pq

from calibration.baseline import Baseline
from engines.util import pid_alive
from monitor.errors import StoreError
from monitor.measures.summary import SessionSummary
from monitor.store.people import check_person
from monitor.store.series import merge_parts

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
STATUSES = ("running", "complete", "incomplete", "failed")


def default_root() -> Path:
    env = os.environ.get("FACEMONITOR_STORE")
    return Path(env) if env else Path(platformdirs.user_data_dir("facemonitor"))


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

    def as_dict(self) -> dict:
        return dict(self.__dict__, summary=self.summary.as_dict() if self.summary else None)


class Store:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root else default_root()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "sessions").mkdir(exist_ok=True)
            (self.root / "logs").mkdir(exist_ok=True)
            self.db = sqlite3.connect(self.root / "facemonitor.sqlite3", timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
            have = {r[1] for r in self.db.execute("PRAGMA table_info(sessions)")}
            for name, sql_type in SESSION_COLUMNS_ADDED:
                if name not in have:
                    self.db.execute(f"ALTER TABLE sessions ADD COLUMN {name} {sql_type}")
            have_steps = {r[1] for r in self.db.execute("PRAGMA table_info(session_steps)")}
            for name, sql_type in STEP_COLUMNS_ADDED:
                if name not in have_steps:
                    self.db.execute(f"ALTER TABLE session_steps ADD COLUMN {name} {sql_type}")
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the store at {self.root}: {e}") from None
        self.recover_stale()

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
        self.session_dir(sid).mkdir(parents=True)
        with self.db:
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
        with self.db:
            self.db.executemany(
                "INSERT INTO events (session_id, at, frame, kind, detail) VALUES (?, ?, ?, ?, ?)",
                [(session_id, now, frame, kind, detail) for kind, detail, frame in events],
            )

    def add_clip_outputs(self, session_id: str, outputs: list[dict]) -> None:
        """The 3D-CNN's clip outputs (first_frame, last_frame, p, ms); a repeated clip is written once."""
        if not outputs:
            return
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO clip_outputs (session_id, first_frame, last_frame, p, ms) VALUES (?, ?, ?, ?, ?)",
                [(session_id, o["first_frame"], o["last_frame"], o["p"], o["ms"]) for o in outputs])

    def clip_outputs(self, session_id: str) -> list[dict]:
        rows = self.db.execute("SELECT first_frame, last_frame, p, ms FROM clip_outputs WHERE session_id=? "
                               "ORDER BY last_frame", (session_id,))
        return [dict(zip(("first_frame", "last_frame", "p", "ms"), r)) for r in rows]

    def update_progress(self, session_id: str, frames: int, frames_with_face: int, dropped: int) -> None:
        with self.db:
            self.db.execute(
                "UPDATE sessions SET frames=?, frames_with_face=?, dropped_frames=? WHERE id=? AND status='running'",
                (frames, frames_with_face, dropped, session_id),
            )

    def finish_session(self, session_id: str, status: str, *, frames: int, frames_with_face: int,
                       dropped_frames: int, processing_fps: float | None, summary: SessionSummary | None,
                       error: str | None = None) -> Path | None:
        """Merge the series chunks, then record the final status (after the series is on disk)."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"bad final status {status!r}")
        series = merge_parts(self.session_dir(session_id))
        with self.db:
            self.db.execute(
                "UPDATE sessions SET status=?, finished_at=?, frames=?, frames_with_face=?, dropped_frames=?,"
                " processing_fps=?, series_path=?, summary=?, error=? WHERE id=?",
                (status, now_iso(), frames, frames_with_face, dropped_frames, processing_fps,
                 str(series) if series else None, json.dumps(summary.as_dict()) if summary is not None else None,
                 error, session_id),
            )
        return series

    def recover_stale(self) -> list[str]:
        """Mark sessions left running by a dead process on this host as incomplete."""
        rows = self.db.execute("SELECT id, pid, host FROM sessions WHERE status='running'").fetchall()
        recovered = []
        for sid, pid, host in rows:
            if host == socket.gethostname() and not pid_alive(pid):
                series = merge_parts(self.session_dir(sid)) if self.session_dir(sid).exists() else None
                n = pq.read_metadata(series).num_rows if series else 0
                with self.db:
                    self.db.execute(
                        "UPDATE sessions SET status='incomplete', finished_at=?, series_path=?, frames=?,"
                        " error=COALESCE(error, 'the recording process ended before the session finished')"
                        " WHERE id=? AND status='running'",
                        (now_iso(), str(series) if series else None, n, sid),
                    )
                    self.db.execute(
                        "INSERT INTO events (session_id, at, kind, detail) VALUES (?, ?, 'recovered', ?)",
                        (sid, now_iso(), f"process {pid} gone; {n} frames kept"),
                    )
                recovered.append(sid)
        return recovered

    def _row(self, r: tuple) -> SessionRow:
        (sid, created, finished, status, source, mode, backend, person, frames, fwf, dropped, fps,
         series, summary, error, protocol, protocol_status, video) = r
        return SessionRow(sid, created, finished, status, source, mode, backend, person, frames, fwf, dropped,
                          fps, series, SessionSummary.from_dict(json.loads(summary)) if summary else None, error, protocol, protocol_status,
                          video)

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

        with self.db:
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
        d = self.session_dir(session_id)
        if (d / "series.parquet").exists():
            return pq.read_table(d / "series.parquet")
        parts = sorted((d / "parts").glob("part-*.parquet"))
        if not parts:
            return pa.table({})
        return pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")
