"""Video sources: what a source string names (webcam index, video file, photo, RTSP/HTTP URL, a
browser's camera), opening it with an error that says what is wrong, and the frames it yields.
The capture thread (monitor.capture.thread) reads them into a mailbox (monitor.capture.mailbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from monitor.capture.browser_feed import lookup
from monitor.capture.still import IMAGE_SUFFIXES, Prefetched, StillImage
from monitor.errors import SourceError

OPEN_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 5000
MAX_FRAME_SIDE = 4096  # px on the long side; larger frames are downscaled before they go on the wire


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
        if path.suffix.lower() in IMAGE_SUFFIXES or cv2.haveImageReader(str(path)):  # a photo, whatever its name
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise SourceError(f"{path}: not a readable image (unknown format, or truncated/corrupt)")
            return StillImage(image)
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise SourceError(f"{path}: not a readable video (unknown format, or truncated/corrupt)")
        ok, first = cap.read()
        if not ok:
            cap.release()
            raise SourceError(f"{path}: no frame could be decoded (truncated or corrupt video)")
        return Prefetched(cap, first)  # checking the file costs no frame
    if spec.kind == "url":
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        cap = cv2.VideoCapture(spec.value, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            raise SourceError(f"{spec.value}: stream unreachable or not a video (gave up after {OPEN_TIMEOUT_MS // 1000} s)")
        ok, first = cap.read()
        if not ok:
            cap.release()
            raise SourceError(f"{spec.value}: the stream opened but no frame could be decoded (not a video, an "
                              "unsupported codec, or a recording the server cannot serve in pieces)")
        return Prefetched(cap, first)
    index = int(spec.value)
    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise SourceError(f"camera {index}: not found (no such device, or it is in use)")
    return cap


def bounded(image: np.ndarray, max_side: int = MAX_FRAME_SIDE) -> np.ndarray:
    """The frame itself, or, when its long side exceeds ``max_side``, a copy downscaled to it (the
    measures are scaled by the iris, so they do not depend on the resolution)."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def plausible_fps(fps: float) -> float:
    """A source's frame rate, or 30 when it gives none that is plausible."""
    return fps if fps and 1 <= fps <= 1000 else 30.0


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
    return frames, plausible_fps(fps)
