"""What keeps the store honest when its files are not what they should be: a database file that is
empty or foreign is refused (never replaced), and a failed write (disk full, read-only medium) becomes
one clear StoreError instead of a stray OSError.
"""

from __future__ import annotations

import errno
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from monitor.errors import StoreError

SQLITE_MAGIC = b"SQLite format 3\x00"
# the columns every store has had since the first release; a `sessions` table without them is not ours
CORE_SESSION_COLUMNS = frozenset({"id", "created_at", "status", "source", "mode", "backend", "frames", "summary"})


def has_recordings(root: Path) -> bool:
    """True when the store's folder already holds session folders (so an empty database lost them)."""
    sessions = root / "sessions"
    return sessions.is_dir() and any(p.is_dir() for p in sessions.iterdir())


def check_database_file(path: Path, root: Path) -> None:
    """Refuse a database file that cannot be this store's: not SQLite, or empty while sessions exist.
    A missing file, or an empty one beside no sessions (a store whose creation was cut short), is fine."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as e:
        raise StoreError(f"cannot read the store's database {path}: {e.strerror or e}") from None
    if not head:
        if has_recordings(root):
            raise StoreError(f"the store's database {path} is empty (0 bytes) but {root / 'sessions'} holds "
                             "recordings; refusing to replace it: restore it from a backup or move it aside")
        return
    if head != SQLITE_MAGIC:
        raise StoreError(f"{path} is not a SQLite database (it starts {head[:8]!r}); refusing to use or replace "
                         "it: give another --store folder or move the file aside")


def check_schema(db: sqlite3.Connection, path: Path, root: Path) -> None:
    """Refuse a SQLite database that holds other tables, or a `sessions` table that is not ours, and one
    without any table while the folder holds recordings."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        if has_recordings(root):
            raise StoreError(f"the store's database {path} has no tables but {root / 'sessions'} holds recordings; "
                             "refusing to recreate it: restore it from a backup or move it aside")
        return
    columns = {r[1] for r in db.execute("PRAGMA table_info(sessions)")}
    if not CORE_SESSION_COLUMNS <= columns:
        raise StoreError(f"{path} is a SQLite database of another program (tables: {', '.join(sorted(tables)[:5])}); "
                         "refusing to use it as a facemonitor store: give another --store folder")


def describe_write_error(e: BaseException) -> str:
    """A failed write in a few words: disk full and read-only media are named as such."""
    if isinstance(e, OSError) and e.errno == errno.ENOSPC or "disk is full" in str(e) or "No space left" in str(e):
        return "the disk is full (no space left on device)"
    if isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"the store is not writable ({e.strerror})"
    return f"{type(e).__name__}: {e}"


@contextmanager
def writing(what: str) -> Iterator[None]:
    """Turn a failed write into StoreError('cannot <what>: <why>')."""
    try:
        yield
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"cannot {what}: {describe_write_error(e)}") from e
