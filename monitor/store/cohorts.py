"""The cohort ledger of a store: which recordings of a cohort were analysed, with which settings, into
which session, and how it went.

A cohort run (``facemonitor cohort analyze``) is resumable and idempotent because of this ledger: an
item is keyed by the cohort and the recording's path, and remembers the recording's SHA-256 and the
settings' hash; a re-run skips an item that is ``complete`` with the same content and settings and
re-does anything else. Each item is written in one transaction when its session ends, so a killed
run loses nothing that finished (a session it left ``running`` is recovered as incomplete by the
store, and its item is done again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from monitor.store.db import Store, now_iso

COHORT_SCHEMA = """
CREATE TABLE IF NOT EXISTS cohorts (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    settings TEXT NOT NULL,
    last_run_at TEXT
);
CREATE TABLE IF NOT EXISTS cohort_items (
    cohort_id TEXT NOT NULL REFERENCES cohorts(id),
    path TEXT NOT NULL,
    subject TEXT,
    labels TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'incomplete', 'failed')),
    session_id TEXT REFERENCES sessions(id),
    error TEXT,
    frames INTEGER,
    seconds REAL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (cohort_id, path)
);
"""
ITEM_STATUSES = ("running", "complete", "incomplete", "failed")


@dataclass(frozen=True)
class CohortItemRow:
    cohort_id: str
    path: str
    subject: str | None
    labels: dict
    content_sha256: str
    settings_hash: str
    status: str
    session_id: str | None
    error: str | None
    frames: int | None
    seconds: float | None


class CohortLedger:
    """The cohort tables on a store connection (created when missing)."""

    _COLUMNS = ("cohort_id, path, subject, labels, content_sha256, settings_hash, status, session_id, error, frames,"
                " seconds")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db
        self.db.executescript(COHORT_SCHEMA)

    def open_cohort(self, cohort_id: str, source: str, settings: dict) -> None:
        """Record a run of the cohort (the first run creates it)."""
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO cohorts (id, created_at, source, settings) VALUES (?, ?, ?, ?)",
                            (cohort_id, now_iso(), source, json.dumps(settings, sort_keys=True)))
            self.db.execute("UPDATE cohorts SET last_run_at=?, source=?, settings=? WHERE id=?",
                            (now_iso(), source, json.dumps(settings, sort_keys=True), cohort_id))

    def cohorts(self) -> list[dict]:
        rows = self.db.execute("SELECT id, created_at, source, settings, last_run_at FROM cohorts ORDER BY created_at")
        return [{"id": r[0], "created_at": r[1], "source": r[2], "settings": json.loads(r[3]), "last_run_at": r[4]}
                for r in rows]

    def get_cohort(self, cohort_id: str) -> dict | None:
        return next((c for c in self.cohorts() if c["id"] == cohort_id), None)

    def item(self, cohort_id: str, path: str) -> CohortItemRow | None:
        r = self.db.execute(f"SELECT {self._COLUMNS} FROM cohort_items WHERE cohort_id=? AND path=?",
                            (cohort_id, path)).fetchone()
        return None if r is None else self._row(r)

    def items(self, cohort_id: str) -> list[CohortItemRow]:
        rows = self.db.execute(f"SELECT {self._COLUMNS} FROM cohort_items WHERE cohort_id=? ORDER BY path",
                               (cohort_id,))
        return [self._row(r) for r in rows]

    def start_item(self, cohort_id: str, path: str, subject: str | None, labels: dict, content_sha256: str,
                   settings_hash: str) -> None:
        """Mark an item as being analysed now (its earlier outcome, if any, is replaced)."""
        with self.db:
            self.db.execute(
                "INSERT INTO cohort_items (cohort_id, path, subject, labels, content_sha256, settings_hash, status,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, 'running', ?) ON CONFLICT (cohort_id, path) DO UPDATE SET"
                " subject=excluded.subject, labels=excluded.labels, content_sha256=excluded.content_sha256,"
                " settings_hash=excluded.settings_hash, status='running', session_id=NULL, error=NULL, frames=NULL,"
                " seconds=NULL, updated_at=excluded.updated_at",
                (cohort_id, path, subject, json.dumps(labels, sort_keys=True), content_sha256, settings_hash,
                 now_iso()))

    def finish_item(self, cohort_id: str, path: str, status: str, session_id: str | None, error: str | None,
                    frames: int | None, seconds: float | None) -> None:
        if status not in ITEM_STATUSES or status == "running":
            raise ValueError(f"bad final item status {status!r}")
        with self.db:
            self.db.execute("UPDATE cohort_items SET status=?, session_id=?, error=?, frames=?, seconds=?, updated_at=?"
                            " WHERE cohort_id=? AND path=?",
                            (status, session_id, error, frames, seconds, now_iso(), cohort_id, path))

    @staticmethod
    def _row(r: tuple) -> CohortItemRow:
        return CohortItemRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7], r[8], r[9], r[10])
