"""Frames pushed from outside (a browser's camera over WebRTC) as a capture source.

``BrowserFeed`` looks like a ``cv2.VideoCapture`` to the capture thread: ``read()`` waits for the
newest pushed frame (older unread frames are replaced, and counted), so a browser feed enters the
same capture thread → ZeroMQ → engine pipeline as a webcam. Feeds are registered by name; the
source string ``browser:NAME`` opens one.
"""

from __future__ import annotations

import threading

import numpy as np

READ_TIMEOUT_S = 5.0

_FEEDS: dict[str, "BrowserFeed"] = {}
_LOCK = threading.Lock()


class BrowserFeed:
    def __init__(self, name: str, fps: float = 30.0) -> None:
        self.name = name
        self.fps = fps
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._read_seq = 0
        self.pushed = 0
        self.replaced = 0  # pushed frames that a newer one replaced before the capture thread read them
        self._closed = False

    def push(self, bgr: np.ndarray) -> None:
        if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ValueError(f"expected a BGR uint8 (H, W, 3) frame, got {bgr.dtype} {bgr.shape}")
        with self._cond:
            if self._seq > self._read_seq:
                self.replaced += 1
            self._frame = bgr
            self._seq += 1
            self.pushed += 1
            self._cond.notify_all()

    # -- the cv2.VideoCapture surface the capture thread uses ---------------------------------------
    def read(self, timeout: float = READ_TIMEOUT_S) -> tuple[bool, np.ndarray | None]:
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > self._read_seq or self._closed, timeout):
                return False, None
            if self._closed:
                return False, None
            self._read_seq = self._seq
            return True, self._frame

    def isOpened(self) -> bool:  # noqa: N802  (cv2's name)
        return not self._closed

    def get(self, prop: int) -> float:
        import cv2

        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, prop: int, value: float) -> bool:
        return False

    def release(self) -> None:
        """The capture thread lets go; the feed stays registered for a reconnect."""

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def register(name: str, fps: float = 30.0) -> BrowserFeed:
    with _LOCK:
        feed = _FEEDS.get(name)
        if feed is None or feed._closed:
            feed = _FEEDS[name] = BrowserFeed(name, fps)
        return feed


def lookup(name: str) -> BrowserFeed | None:
    with _LOCK:
        return _FEEDS.get(name)
