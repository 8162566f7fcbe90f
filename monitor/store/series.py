"""The per-frame series on disk: its Arrow schema and table building, and the crash-safe writer.

While a session runs, ``SeriesWriter`` writes every ``chunk_rows`` rows as one Parquet chunk through a
durable atomic write (temporary file, fsync, rename, fsync of the folder), so every chunk on disk is
whole; ``merge_parts`` joins them into ``series.parquet`` when the session ends (or when a stale
session is recovered) and removes the chunks. A chunk that cannot be read (damaged on disk) is never
merged and never deleted: it is renamed ``*.parquet.damaged`` (quarantined) and named in the result,
so one bad chunk costs its own rows only. A write that fails (disk full) raises StoreError and leaves
every chunk already on disk as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engines.util import atomic_path
from monitor.measures.schema import COLUMNS, LANDMARKS_COLUMN, Column
from monitor.store.guard import writing

N_LANDMARK_VALUES = 478 * 3
_ARROW = {"float32": pa.float32(), "float64": pa.float64(), "int16": pa.int16(), "int32": pa.int32(),
          "int64": pa.int64(), "bool": pa.bool_(), "string": pa.string()}


def _field(c: Column) -> pa.Field:
    """A series column as an Arrow field, its unit and definition kept as field metadata."""
    return pa.field(c.name, _ARROW[c.dtype], metadata={"unit": c.unit, "description": c.description})


SCALAR_FIELDS = [_field(c) for c in COLUMNS]
SCHEMA = pa.schema(SCALAR_FIELDS + [pa.field("landmarks_px", pa.list_(pa.float32(), N_LANDMARK_VALUES),
                                             metadata={"unit": "px", "description": LANDMARKS_COLUMN.description})])
SCALAR_COLUMNS = tuple(f.name for f in SCALAR_FIELDS)


def build_table(rows: list[dict], landmarks: list[np.ndarray | None]) -> pa.Table:
    """Rows of scalar columns (missing → null) plus each frame's (478, 3) landmarks or None."""
    columns = {}
    for f in SCALAR_FIELDS:
        values = [r.get(f.name) for r in rows]
        if pa.types.is_floating(f.type):
            arr = np.array([np.nan if v is None else v for v in values], np.float32)
            columns[f.name] = pa.array(arr, f.type, mask=np.isnan(arr))
        else:
            columns[f.name] = pa.array(values, f.type)
    flat = np.zeros((len(landmarks), N_LANDMARK_VALUES), np.float32)
    valid = np.zeros(len(landmarks), bool)
    for i, lm in enumerate(landmarks):
        if lm is not None:
            flat[i] = lm.reshape(-1)
            valid[i] = True
    lm_arr = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), N_LANDMARK_VALUES, mask=pa.array(~valid))
    columns["landmarks_px"] = lm_arr
    return pa.table(columns, schema=SCHEMA)


def _atomic_parquet(table: pa.Table, dest: Path) -> None:
    with atomic_path(dest, durable=True) as tmp:
        pq.write_table(table, tmp, compression="zstd")


class SeriesWriter:
    """Collects per-frame rows and writes them as whole Parquet chunks (about every 5 s at 30 fps)."""

    def __init__(self, session_dir: Path, chunk_rows: int = 150) -> None:
        self.parts = session_dir / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)
        self.chunk_rows = chunk_rows
        self._rows: list[dict] = []
        self._landmarks: list = []
        self._n_parts = len(list(self.parts.glob("part-*.parquet")))
        self.rows_written = 0  # rows in whole chunks on disk (what the session's row may claim)
        self.faces_written = 0

    @property
    def pending_rows(self) -> int:
        """Rows collected but not yet in a chunk on disk."""
        return len(self._rows)

    def append(self, row: dict, landmarks=None) -> None:
        self._rows.append(row)
        self._landmarks.append(landmarks)
        if len(self._rows) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        table = build_table(self._rows, self._landmarks)
        with writing("write a series chunk"):  # on failure the rows stay here and nothing on disk changes
            _atomic_parquet(table, self.parts / f"part-{self._n_parts:06d}.parquet")
        self._n_parts += 1
        self.rows_written += len(self._rows)
        self.faces_written += sum(bool(r.get("face")) for r in self._rows)
        self._rows, self._landmarks = [], []


@dataclass(frozen=True)
class Merged:
    """The outcome of merging a session's chunks: the series file (None when there is nothing) and the
    chunks found unreadable and quarantined."""

    path: Path | None
    damaged: tuple[str, ...] = ()


def read_parts(session_dir: Path) -> tuple[list[pa.Table], list[Path]]:
    """The session's readable chunks, in order, and the unreadable ones (left where they are)."""
    tables, bad = [], []
    for p in sorted((session_dir / "parts").glob("part-*.parquet")):
        try:
            tables.append(pq.read_table(p))
        except (pa.ArrowException, OSError):
            bad.append(p)
    return tables, bad


def quarantine(paths: list[Path]) -> tuple[str, ...]:
    """Rename damaged chunks to ``*.damaged`` so that nothing reads or deletes them again."""
    for p in paths:
        with writing(f"quarantine the damaged chunk {p}"):
            p.rename(p.with_name(p.name + ".damaged"))
    return tuple(p.name for p in paths)


def merge_session_parts(session_dir: Path) -> Merged:
    """Write ``series.parquet`` from the readable chunks (atomically), quarantine the unreadable ones and
    remove the merged ones. Raises StoreError when the file cannot be written (the chunks stay)."""
    tables, bad = read_parts(session_dir)
    dest = session_dir / "series.parquet"
    if dest.exists() and tables:  # a merge cut short after its rename: the series is whole, the chunks are copies
        tables = []
    if tables:
        table = pa.concat_tables(tables, promote_options="default")
        with writing(f"write the series of {session_dir.name}"):
            _atomic_parquet(table, dest)
    damaged = quarantine(bad)
    for p in (session_dir / "parts").glob("part-*.parquet"):
        p.unlink()
    return Merged(dest if dest.exists() else None, damaged)


def merge_parts(session_dir: Path) -> Path | None:
    """Write ``series.parquet`` from the chunks (atomically) and remove the chunks (see merge_session_parts)."""
    return merge_session_parts(session_dir).path
