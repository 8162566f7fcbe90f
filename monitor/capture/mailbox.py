"""The hand-over between the capture thread and the sender: live mode keeps the newest frame (the
replaced one is counted as dropped); record mode blocks a file reader (nothing lost) and drops, with
each frame id logged, what a device delivers into a full queue."""

from __future__ import annotations

import threading
from collections import deque

from monitor.capture.sources import Frame


class FrameMailbox:
    """Hand-over between the capture thread and the sender.

    live: capacity 1, the newest frame replaces an unsent one (counted as dropped).
    record, blocking producer (a file): ``put`` waits while full — nothing is lost.
    record, device: ``put`` never waits; a frame that finds the queue full is dropped and logged.
    """

    def __init__(self, mode: str, capacity: int = 60, block: bool = True) -> None:
        if mode not in ("live", "record"):
            raise ValueError("mode must be 'live' or 'record'")
        self.mode = mode
        self.capacity = 1 if mode == "live" else capacity
        self.block = block and mode == "record"
        self._items: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped_ids: list[int] = []  # every dropped frame id, in order

    def put(self, frame: Frame, stop: threading.Event) -> None:
        with self._cond:
            if self.mode == "live":
                if self._items:
                    self.dropped_ids.append(self._items.popleft().frame_id)
            elif len(self._items) >= self.capacity:
                if not self.block:
                    self.dropped_ids.append(frame.frame_id)
                    return
                while len(self._items) >= self.capacity and not stop.is_set():
                    self._cond.wait(0.1)
                if stop.is_set():
                    return
            self._items.append(frame)
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        """The next frame, or None on timeout or when closed and empty."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                frame = self._items.popleft()
                self._cond.notify_all()
                return frame
            return None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def exhausted(self) -> bool:
        with self._cond:
            return self._closed and not self._items
