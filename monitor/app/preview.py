"""The live preview as JPEG frames, and the opt-in raw video, each in a thread of its own.

``PreviewEncoder.submit`` only swaps a reference (the session thread never waits on a viewer); its
thread draws the landmark overlay on the newest frame, mirrors it if asked, and encodes a JPEG at
most ``max_fps`` times a second. Viewers (the app's MJPEG stream) wait for a newer sequence number.
``VideoKeeper`` writes frames to an H.264 MP4 through PyAV from a bounded queue; a frame that finds
the queue full is dropped and counted, never waited for.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from monitor.report.overlay import BAD_COLOUR, OK_COLOUR, draw_landmarks

MAX_WIDTH = 640
JPEG_QUALITY = 75


class PreviewEncoder:
    def __init__(self, max_fps: float = 30.0) -> None:
        self.min_interval = 1.0 / max_fps
        self._cond = threading.Condition()
        self._pending = None
        self._jpeg: bytes | None = None
        self.seq = 0
        self.encoded = 0
        self.encode_ms: list[float] = []
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="preview-encoder", daemon=True)
        self._thread.start()

    def submit(self, image: np.ndarray | None, landmarks, quality_ok: bool, mirror: bool) -> None:
        if image is None:
            return
        with self._cond:
            self._pending = (image, landmarks, quality_ok, mirror)
            self._cond.notify_all()

    def render(self, image: np.ndarray, landmarks, quality_ok: bool, mirror: bool) -> bytes:
        """One preview JPEG: downscaled to MAX_WIDTH, the contour landmarks and irises drawn."""
        view = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        k = min(1.0, MAX_WIDTH / view.shape[1])
        view = cv2.resize(view, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1.0 else view.copy()
        if landmarks is not None:
            draw_landmarks(view, landmarks, k, OK_COLOUR if quality_ok else BAD_COLOUR)
        if mirror:
            view = cv2.flip(view, 1)
        ok, buf = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        return buf.tobytes() if ok else b""

    def _loop(self) -> None:
        last = 0.0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                item, self._pending = self._pending, None
            wait = self.min_interval - (time.monotonic() - last)
            if wait > 0:
                time.sleep(wait)
            last = time.monotonic()
            t0 = time.perf_counter()
            jpeg = self.render(*item)
            self.encode_ms.append((time.perf_counter() - t0) * 1e3)
            del self.encode_ms[:-300]
            with self._cond:
                self._jpeg = jpeg
                self.seq += 1
                self.encoded += 1
                self._cond.notify_all()

    def latest(self) -> tuple[int, bytes | None]:
        with self._cond:
            return self.seq, self._jpeg

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, bytes | None]:
        with self._cond:
            self._cond.wait_for(lambda: self.seq > seq or self._closed, timeout)
            return self.seq, self._jpeg

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class VideoKeeper:
    """Raw frames → H.264 MP4 (browser-playable), kept only when the person opted in."""

    def __init__(self, path: Path, fps: int = 30, capacity: int = 90) -> None:
        self.path = Path(path)
        self.fps = fps
        self._queue: queue.Queue = queue.Queue(capacity)
        self.dropped = 0
        self.written = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._loop, name="video-keeper", daemon=True)

    def start(self) -> "VideoKeeper":
        self._thread.start()
        return self

    def submit(self, image: np.ndarray) -> None:
        try:
            self._queue.put_nowait(image)
        except queue.Full:
            self.dropped += 1

    def _loop(self) -> None:
        import av

        container = stream = None
        tmp = self.path.with_name(f".{self.path.name}.tmp.mp4")
        try:
            while True:
                image = self._queue.get()
                if image is None:
                    break
                if image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                if container is None:
                    container = av.open(str(tmp), "w")
                    stream = container.add_stream("libx264", rate=self.fps)
                    stream.width, stream.height = image.shape[1] // 2 * 2, image.shape[0] // 2 * 2
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"preset": "ultrafast", "crf": "23"}
                frame = av.VideoFrame.from_ndarray(image[: stream.height, : stream.width], format="bgr24")
                container.mux(stream.encode(frame))
                self.written += 1
            if container is not None:
                container.mux(stream.encode())
                container.close()
                container = None
                tmp.replace(self.path)
        except Exception as e:  # the session goes on without its video; the reason is kept
            self.error = f"{type(e).__name__}: {e}"
        finally:
            if container is not None:
                container.close()

    def close(self, timeout: float = 30.0) -> int:
        """Finish the file; returns how many frames were dropped."""
        self._queue.put(None)
        self._thread.join(timeout)
        return self.dropped
