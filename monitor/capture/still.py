"""Sources that look like a ``cv2.VideoCapture`` to the capture thread without being a stream:

- ``StillImage``: a photo is a one-frame recording (``analyze photo.jpg`` is a one-frame session);
- ``Prefetched``: a video file whose first frame was decoded to check the file, handed out first,
  so that checking a file never costs a frame (a one-frame video keeps its frame).
"""

from __future__ import annotations

import cv2
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")  # video files a folder of recordings holds
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
STILL_FPS = 30.0  # the media time base a photo's one frame is given (t_s = 0)


class StillImage:
    """One decoded image as a one-frame source."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self._given = False
        self._open = True

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._given or not self._open:
            return False, None
        self._given = True
        return True, self.image

    def isOpened(self) -> bool:  # noqa: N802  (cv2's name)
        return self._open

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_FPS:
            return STILL_FPS
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return 1.0
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_POS_FRAMES and value == 0:
            self._given = False
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
