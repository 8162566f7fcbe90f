"""File and process helpers that every layer uses: hashing, atomic writes, process checks.

This is the lowest module of the project (it imports nothing of it), so ``engines``, ``calibration``
and every stage of ``monitor`` share one implementation of each.

Atomic writes go to a hidden temporary file beside the destination, which replaces the destination
only when whole. ``durable=True`` also fsyncs the file and its folder before and after the rename,
so a power loss leaves either the old file or the new one (used by the session store); the default
is enough for exports, caches and model files that can be written again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterator


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: Path | str, durable: bool = False, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path to write ``dest`` through: when the block ends without an error the file
    replaces ``dest``; on an error it is removed and ``dest`` is left as it was. ``suffix`` keeps an
    extension that the writer looks at (``.tmp.mp4``)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}{suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written for {dest} (the writer left no {tmp.name})")
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dest)
        if durable:
            _fsync_dir(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(dest: Path | str, data: bytes | str, durable: bool = False) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``dest`` atomically; returns ``dest``."""
    with atomic_path(dest, durable) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(dest)


def process_age_s() -> float | None:
    """Seconds since this process started, from /proc (10 ms steps); None where there is no /proc."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: start time after boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int | None) -> bool:
    """True while a process with this id exists (a zombie counts until it is reaped)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve_until_interrupted(server, ready_line: str) -> None:
    """``server.serve()``, printing ``ready_line`` once it listens (clients and tests wait for it);
    Ctrl-C ends it quietly, as SIGTERM does through the server's own stop()."""
    try:
        server.serve(ready=lambda: print(ready_line, flush=True))
    except KeyboardInterrupt:
        pass
