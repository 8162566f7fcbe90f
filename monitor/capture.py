"""Video sources and the capture thread.

A capture thread reads one source (webcam index, video file, RTSP/HTTP URL), stamps every frame
with a frame id and a monotonic capture time, and hands it to a mailbox: in live mode the newest
frame replaces an unsent one (the replaced frame is counted as dropped); in record mode a file is
read only as fast as the consumer takes frames, and a device that outruns a full queue has its
frames dropped, each counted and logged with its id. A watchdog reports a frozen or disconnected
device and reconnects.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import quiet  # noqa: F401  (before cv2)
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from .errors import SourceError  # noqa: E402

OPEN_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "camera" | "file" | "url" | "browser"
    value: str

    @property
    def is_device(self) -> bool:
        return self.kind in ("camera", "url", "browser")

    def describe(self) -> str:
        return {"camera": f"camera {self.value}", "file": self.value, "url": self.value,
                "browser": f"browser camera {self.value}"}[self.kind]


def parse_source(spec: str | int) -> SourceSpec:
    text = str(spec).strip()
    if text.startswith("browser:") and len(text) > len("browser:"):
        return SourceSpec("browser", text.split(":", 1)[1])
    if text.isdigit():
        return SourceSpec("camera", text)
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("rtsp", "rtsps", "http", "https", "rtmp", "udp", "tcp", "srt"):
            raise SourceError(f"unsupported URL scheme {scheme!r} in {text}")
        return SourceSpec("url", text)
    return SourceSpec("file", text)


@dataclass(frozen=True, slots=True)
class Frame:
    frame_id: int
    t_capture_ns: int  # time.monotonic_ns() right after the frame was read
    t_media_us: int  # media time from the start of the stream
    image: np.ndarray  # BGR (H, W, 3) or gray (H, W) uint8
    decode_ms: float


def open_capture(spec: SourceSpec) -> cv2.VideoCapture:
    """Open a source or raise SourceError with a message that names what is wrong."""
    if spec.kind == "browser":
        from .browser_feed import lookup

        feed = lookup(spec.value)
        if feed is None or not feed.isOpened():
            raise SourceError(f"browser camera {spec.value!r} is not connected")
        return feed
    if spec.kind == "file":
        path = Path(spec.value)
        if not path.exists():
            raise SourceError(f"{path}: no such file")
        if path.is_dir():
            raise SourceError(f"{path}: is a directory, not a video file")
        if path.stat().st_size == 0:
            raise SourceError(f"{path}: file is empty (0 bytes)")
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise SourceError(f"{path}: not a readable video (unknown format, or truncated/corrupt)")
        ok, _ = cap.read()
        if not ok:
            cap.release()
            raise SourceError(f"{path}: no frame could be decoded (truncated or corrupt video)")
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        return cap
    if spec.kind == "url":
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        cap = cv2.VideoCapture(spec.value, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            raise SourceError(f"{spec.value}: stream unreachable or not a video (gave up after {OPEN_TIMEOUT_MS // 1000} s)")
        return cap
    index = int(spec.value)
    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise SourceError(f"camera {index}: not found (no such device, or it is in use)")
    return cap


def read_rgb_frames(path: str | Path, limit: int | None = None) -> tuple[list[np.ndarray], float]:
    """The first ``limit`` frames (all when None) of a video file as RGB arrays, and its frame rate
    (30 when the file does not give a plausible one)."""
    cap = open_capture(parse_source(str(path)))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    try:
        while limit is None or len(frames) < limit:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return frames, (fps if fps and 1 <= fps <= 1000 else 30.0)


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
