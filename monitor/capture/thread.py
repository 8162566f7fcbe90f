"""The capture thread: reads one source into a mailbox, stamps frame ids, capture times and media
times, and knows how each kind of source ends.

- A **recording** (a file, or a URL whose container gives a frame count) is timed by its presentation
  times and read to its end. A pass that decodes fewer frames than the container lists, or whose
  decoding fails and resumes, is reported (``source_truncated`` / ``source_damaged``) and leaves
  ``shortfall`` set, so the session ends ``incomplete``. A recording behind a URL that drops is reopened
  and continues where it was (frames already handed out are skipped, never replayed); it ends, without
  reconnecting, once its frames are in.
- A **device** (camera, live stream, browser camera) is timed by the clock and watched: identical
  frames (frozen), failed or stalled reads are reported and the source is reopened, waiting twice as
  long after each failed try (up to ``reconnect_max_s``); with no frame for ``give_up_after_s`` the
  thread gives up with a ``SourceError``. A live stream that starts over at its first frame is a finite
  recording: it ends instead of being replayed.
Frames larger than ``MAX_FRAME_SIDE`` on the long side are downscaled before they go on the wire.
"""

from __future__ import annotations

import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from monitor.capture.mailbox import FrameMailbox
from monitor.capture.media_pass import MediaClock, PassTally
from monitor.capture.sources import MAX_FRAME_SIDE, Frame, SourceSpec, bounded, open_capture, plausible_fps
from monitor.errors import SourceError

STALLED_READ_S = 1.0  # a failed read that took this long is a stalled stream, not a closed one


@dataclass
class CaptureStats:
    frames: int = 0
    reconnects: int = 0
    events: list = field(default_factory=list)  # (t_monotonic_s, kind, detail, frame_id)
    expected_frames: int = 0  # frames the container lists for one pass (0: it gives no count)
    decoded_frames: int = 0  # frames decoded in the last pass of a recording


def signature(image: np.ndarray) -> int:
    """A cheap fingerprint of a picture (a subsample's CRC) to notice identical frames."""
    return zlib.crc32(np.ascontiguousarray(image[::8, ::8]).tobytes())


class CaptureThread(threading.Thread):
    """Reads ``spec`` into ``mailbox`` until the source ends or ``stop()`` is called."""

    def __init__(self, spec: SourceSpec, mailbox: FrameMailbox, *, realtime: bool = False,
                 repeat: int = 1, max_seconds: float | None = None, frozen_after_s: float = 2.0,
                 reconnect_every_s: float = 1.0, reconnect_max_s: float = 8.0, give_up_after_s: float = 30.0,
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
        self.reconnect_max_s = max(reconnect_max_s, reconnect_every_s)
        self.give_up_after_s = give_up_after_s
        self.stats = CaptureStats()
        self.error: Exception | None = None
        self.shortfall: str | None = None  # why a recording was not read whole (damaged, truncated), or None
        self.recording = spec.kind == "file"  # a recording rather than a device (decided when it opens)
        self._on_event = on_event
        self._halt = threading.Event()
        self._cap = capture
        self.fps = float("nan")
        self._frame_id = 0
        self._loops_left = self.repeat
        self._last_good = time.monotonic()  # when the last frame was handed out
        self._next_wait_s = 0.0  # the wait before the next reopen; grows while reopening fails
        self._skip_seen = False  # a stream was reopened after a failed read: skip a replay of what it gave
        self._first_sig: int | None = None  # a device's first picture, to notice a recording starting over
        self._same: tuple[int | None, float | None] = (None, None)  # (signature, identical since)
        self._downscaled = False

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
        self.fps = plausible_fps(self._cap.get(cv2.CAP_PROP_FPS))
        expected = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.recording = self.spec.kind == "file" or (self.spec.kind == "url" and expected > 0)
        self.stats.expected_frames = max(expected, 0)
        self._clock, self._tally = MediaClock(self.fps), PassTally(expected, self.fps)
        self._t0 = time.monotonic_ns()
        while not self._halt.is_set():
            t_read = time.perf_counter()
            ok, image = self._cap.read()
            decode_ms = (time.perf_counter() - t_read) * 1e3
            if not ok or image is None:
                if not self._after_failed_read(decode_ms):
                    return
                continue
            now_ns = time.monotonic_ns()
            t_media_us = self._recording_time() if self.recording else self._device_time(image, now_ns)
            if t_media_us is None:
                continue
            if t_media_us < 0:
                return
            if self.max_seconds is not None and t_media_us / 1e6 >= self.max_seconds:
                return
            if self.recording and self.realtime:
                delay = self._t0 / 1e9 + t_media_us / 1e6 - time.monotonic()
                if delay > 0 and self._halt.wait(delay):
                    return
                now_ns = time.monotonic_ns()
            self._hand_out(Frame(self._frame_id, now_ns, t_media_us, self._bounded(image), decode_ms))

    def _hand_out(self, frame: Frame) -> None:
        self._last_good = time.monotonic()
        self._next_wait_s = 0.0
        self.mailbox.put(frame, self._halt)
        self._frame_id += 1
        self.stats.frames = self._frame_id

    def _bounded(self, image: np.ndarray) -> np.ndarray:
        out = bounded(image)
        if out is not image and not self._downscaled:
            self._downscaled = True
            self._event("frame_downscaled", f"{image.shape[1]}x{image.shape[0]} frames are above {MAX_FRAME_SIDE} px "
                        f"on the long side; downscaled to {out.shape[1]}x{out.shape[0]}", self._frame_id)
        return out

    # -- recordings ------------------------------------------------------------------------------------
    def _recording_time(self) -> int | None:
        """The frame's media time from its presentation time; None for a frame a reopened recording
        already handed out."""
        pts_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        if self._skip_seen and self._clock.seen(pts_ms):
            return None
        self._skip_seen = False
        t_media_us = self._clock.stamp(pts_ms)
        self._tally.decoded_frame((t_media_us - self._clock.offset_us) / 1000)
        self.stats.decoded_frames = self._tally.decoded
        return t_media_us

    def _after_failed_read(self, read_ms: float) -> bool:
        """A read gave no frame: True to read on (after a reopen), False when the source has ended."""
        if self.spec.kind == "file":
            return self._tally.failed_read() or self._end_pass()
        if self.recording and self._tally.reached_the_end():
            self._event("source_ended", f"{self.spec.describe()}: the recording ended after "
                        f"{self._tally.decoded} frames")
            return False
        reason = "stalled" if read_ms >= STALLED_READ_S * 1e3 else "disconnected"
        if self._reconnect(reason):
            self._skip_seen = self.recording or self.spec.kind == "url"  # see _recording_time, _device_time
            return True
        return False

    def _end_pass(self) -> bool:
        """A file's pass is over: report frames the container listed that did not decode; start the
        next pass of a repeated file. True to read on."""
        short = self._tally.shortfall()
        if short is not None:
            self.shortfall = self.shortfall or short
            kind = "source_damaged" if short.startswith("damaged") else "source_truncated"
            self._event(kind, f"{self.spec.describe()}: {short}", self._frame_id)
        self._loops_left -= 1
        if self._loops_left <= 0:
            return False
        self._clock.next_pass()
        self._tally = PassTally(self._tally.expected, self.fps)
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        return True

    # -- devices ---------------------------------------------------------------------------------------
    def _device_time(self, image: np.ndarray, now_ns: int) -> int | None:
        """Clock time since the start; None for a frame not to hand out (the watchdog reopened the
        source), -1 when a stream started over at its first picture (a finite recording has ended)."""
        sig = signature(image)
        reopened, self._skip_seen = self._skip_seen, False
        if self._first_sig is None:
            self._first_sig = sig
        elif reopened and sig == self._first_sig:
            self._event("source_ended", f"{self.spec.describe()}: the stream started over at its first frame "
                        "(a finite recording); not replayed")
            return -1
        last_sig, since = self._same
        now = time.monotonic()
        if sig != last_sig:
            self._same = (sig, None)
        elif since is None:
            self._same = (sig, now)
        elif now - since >= self.frozen_after_s:
            self._event("source_frozen", f"identical frames for {self.frozen_after_s:.0f} s", self._frame_id)
            self._same = (None, None)
            if not self._reconnect("frozen"):
                return -1
            return None
        return (now_ns - self._t0) // 1000

    def _reconnect(self, reason: str = "disconnected") -> bool:
        """Reopen the source until it answers, waiting ``reconnect_every_s`` and then twice as long after
        each failed try (at most ``reconnect_max_s``); give up once no frame has come for
        ``give_up_after_s``."""
        kind = {"disconnected": "source_disconnected", "stalled": "source_stalled"}.get(reason, "source_reopen")
        self._event(kind, f"{self.spec.describe()}: {reason}, reconnecting")
        while not self._halt.is_set():
            left = self.give_up_after_s - (time.monotonic() - self._last_good)
            if left <= 0:
                self._event("source_lost", f"no frames for {self.give_up_after_s:.0f} s; giving up")
                self.error = SourceError(f"{self.spec.describe()}: no frames for {self.give_up_after_s:.0f} s "
                                         f"({self.stats.reconnects} reconnects)")
                return False
            if self._next_wait_s and self._halt.wait(min(self._next_wait_s, left)):
                return False
            self._next_wait_s = min(max(2 * self._next_wait_s, self.reconnect_every_s), self.reconnect_max_s)
            self._cap.release()
            try:
                self._cap = open_capture(self.spec)
            except SourceError:
                continue
            self.stats.reconnects += 1
            self._event("source_reconnected", self.spec.describe())
            return True
        return False
