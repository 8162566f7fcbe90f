"""Sources that look like a ``cv2.VideoCapture`` to the capture thread without being a stream:

- ``StillImage``: a photo is a one-frame recording (``analyze photo.jpg`` is a one-frame session),
  and a photo set is a recording of one frame per photo, one second apart (``analyze --photo-set``:
  frame i at t_s = i);
- ``Prefetched``: a video file whose first frame was decoded to check the file, handed out first,
  so that checking a file never costs a frame (a one-frame video keeps its frame).
"""

from __future__ import annotations

import cv2
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")  # video files a folder of recordings holds
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
STILL_FPS = 30.0  # the media time base a photo's one frame is given (t_s = 0)
PHOTO_SET_FPS = 1.0  # a photo set's frames are one second apart: photo i at t_s = i


def is_image(path) -> bool:
    """Whether a file name has one of the image suffixes (case-insensitive)."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


class StillImage:
    """Decoded images as a source of one frame each (one image: a one-frame source)."""

    def __init__(self, image: np.ndarray | list[np.ndarray], fps: float = STILL_FPS) -> None:
        self.images = [image] if isinstance(image, np.ndarray) else list(image)
        self.fps = fps
        self._next = 0
        self._open = True

    @property
    def image(self) -> np.ndarray:
        return self.images[0]

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._next >= len(self.images) or not self._open:
            return False, None
        self._next += 1
        return True, self.images[self._next - 1]

    def isOpened(self) -> bool:  # noqa: N802  (cv2's name)
        return self._open

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_FPS:
            return self.fps
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(len(self.images))
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_POS_FRAMES and value == 0:
            self._next = 0
            return True
        return False

    def release(self) -> None:
        self._open = False


class Prefetched:
    """A ``cv2.VideoCapture`` whose first frame was already read: ``read`` gives that frame first."""

    def __init__(self, cap: cv2.VideoCapture, first: np.ndarray) -> None:
        self._cap = cap
        self._first: np.ndarray | None = first

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._first is not None:
            frame, self._first = self._first, None
            return True, frame
        return self._cap.read()

    def isOpened(self) -> bool:  # noqa: N802  (cv2's name)
        return self._cap.isOpened()

    def get(self, prop: int) -> float:
        return self._cap.get(prop)

    def set(self, prop: int, value: float) -> bool:
        self._first = None
        return self._cap.set(prop, value)

    def release(self) -> None:
        self._first = None
        self._cap.release()
