"""Helpers shared by the tests."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, store: Path | None = None, timeout: float = 240, env: dict | None = None):
    """Run the real ``facemonitor`` command in a subprocess."""
    e = dict(os.environ)
    if store is not None:
        e["FACEMONITOR_STORE"] = str(store)
    e.pop("FACEMONITOR_DEBUG", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "monitor", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=ROOT)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0, color: bool = True) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h), isColor=color)
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
