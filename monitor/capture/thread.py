"""The capture thread: reads one source into a mailbox, stamps frame ids and capture times, and
watches a device (frozen picture, no frames) and reconnects it."""

from __future__ import annotations

import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from monitor.capture.mailbox import FrameMailbox
from monitor.capture.sources import Frame, SourceSpec, open_capture
from monitor.errors import SourceError


@dataclass
class CaptureStats:
    frames: int = 0
    reconnects: int = 0
    events: list = field(default_factory=list)  # (t_monotonic_s, kind, detail, frame_id)


class CaptureThread(threading.Thread):
    """Reads ``spec`` into ``mailbox`` until the source ends or ``stop()`` is called."""

    def __init__(self, spec: SourceSpec, mailbox: FrameMailbox, *, realtime: bool = False,
                 repeat: int = 1, max_seconds: float | None = None, frozen_after_s: float = 2.0,
                 reconnect_every_s: float = 1.0, give_up_after_s: float = 30.0,
                 on_event: Callable[[str, str, int | None], None] | None = None,
                 capture: cv2.VideoCapture | None = None) -> None:
        super().__init__(name=f"capture:{spec.describe()}", daemon=True)
        self.spec = spec
        self.mailbox = mailbox
        self.realtime = realtime
        self.repeat = max(1, repeat)
        self.max_seconds = max_seconds
        self.frozen_after_s = frozen_after_s
        self.reconnect_every_s = reconnect_every_s
        self.give_up_after_s = give_up_after_s
        self.stats = CaptureStats()
        self.error: Exception | None = None
        self._on_event = on_event
        self._halt = threading.Event()
        self._cap = capture
        self.fps = float("nan")

    def stop(self) -> None:
        self._halt.set()

    def _event(self, kind: str, detail: str, frame_id: int | None = None) -> None:
        self.stats.events.append((time.monotonic(), kind, detail, frame_id))
        if self._on_event:
            self._on_event(kind, detail, frame_id)

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # reported to the consumer, never lost in a thread
            self.error = e
            self._event("capture_error", str(e))
        finally:
            if self._cap is not None:
                self._cap.release()
            self.mailbox.close()

    def _run(self) -> None:
        if self._cap is None:
            self._cap = open_capture(self.spec)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 1 <= fps <= 1000 else 30.0
        frame_id = 0
        t0 = time.monotonic_ns()
        media_offset_us = 0
        last_good = time.monotonic()
        last_sig, same_since, frozen_reported = None, None, False
        loops_left = self.repeat
        index_in_loop = 0
        while not self._halt.is_set():
            t_read = time.perf_counter()
            ok, image = self._cap.read()
            decode_ms = (time.perf_counter() - t_read) * 1e3
            now_ns = time.monotonic_ns()
            if not ok or image is None:
                if self.spec.kind == "file":
                    loops_left -= 1
                    if loops_left <= 0:
                        return
                    media_offset_us += int(round(index_in_loop * 1e6 / self.fps))
                    index_in_loop = 0
                    self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                if not self._reconnect(last_good):
                    return
                last_good = time.monotonic()
                continue
            last_good = time.monotonic()
            if self.spec.kind == "file":
                t_media_us = media_offset_us + int(round(index_in_loop * 1e6 / self.fps))
                index_in_loop += 1
                if self.realtime:
                    delay = t0 / 1e9 + t_media_us / 1e6 - time.monotonic()
                    if delay > 0 and self._halt.wait(delay):
                        return
                    now_ns = time.monotonic_ns()
            else:
                t_media_us = (now_ns - t0) // 1000
                sig = zlib.crc32(np.ascontiguousarray(image[::8, ::8]).tobytes())
                if sig == last_sig:
                    same_since = same_since or last_good
                    if not frozen_reported and last_good - same_since >= self.frozen_after_s:
                        self._event("source_frozen", f"identical frames for {self.frozen_after_s:.0f} s", frame_id)
                        frozen_reported = True
                        if not self._reconnect(last_good, reason="frozen"):
                            return
                        last_sig, same_since, frozen_reported = None, None, False
                        continue
                else:
                    last_sig, same_since, frozen_reported = sig, None, False
            if self.max_seconds is not None and t_media_us / 1e6 >= self.max_seconds:
                return
            self.mailbox.put(Frame(frame_id, now_ns, t_media_us, image, decode_ms), self._halt)
            frame_id += 1
            self.stats.frames = frame_id

    def _reconnect(self, since: float, reason: str = "disconnected") -> bool:
        """Reopen a device until it answers or ``give_up_after_s`` has passed."""
        self._event(f"source_{reason}" if reason == "disconnected" else "source_reopen",
                    f"{self.spec.describe()}: {reason}, reconnecting")
        while not self._halt.is_set():
            if time.monotonic() - since > self.give_up_after_s:
                self._event("source_lost", f"no frames for {self.give_up_after_s:.0f} s; giving up")
                self.error = SourceError(f"{self.spec.describe()}: no frames for {self.give_up_after_s:.0f} s")
                return False
            self._cap.release()
            try:
                self._cap = open_capture(self.spec)
                self.stats.reconnects += 1
                self._event("source_reconnected", self.spec.describe())
                return True
            except SourceError:
                self._halt.wait(self.reconnect_every_s)
        return False
