"""The live clip window: per stream, a ring buffer of the last N aligned crops.

``push`` stores a crop with its frame id without copying the history; ``due`` says when a new clip is
wanted (every ``stride`` pushes once the window is full); ``clip`` returns the crops in time order as
one contiguous array. A frame without a face breaks the clip: the window empties, so no clip ever
spans a gap (a clip is 64 consecutive frames with a face, as in the training data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Clip:
    frames: np.ndarray  # (N, S, S, 3) uint8, oldest first
    first_frame: int
    last_frame: int


class ClipWindow:
    def __init__(self, length: int = 64, size: int = 112, stride: int = 32) -> None:
        if length < 1 or stride < 1:
            raise ValueError("clip length and stride must be at least 1")
        self.length, self.size, self.stride = length, size, stride
        self._ring = np.zeros((length, size, size, 3), np.uint8)
        self._ids = np.zeros(length, np.int64)
        self._count = 0  # crops since the window was last emptied
        self._next_at = length  # the count at which the next clip is due

    @property
    def full(self) -> bool:
        return self._count >= self.length

    def reset(self) -> None:
        self._count = 0
        self._next_at = self.length

    def push(self, crop: np.ndarray, frame_id: int) -> None:
        if crop.shape != (self.size, self.size, 3) or crop.dtype != np.uint8:
            raise ValueError(f"crop must be uint8 {(self.size, self.size, 3)}, got {crop.dtype} {crop.shape}")
        i = self._count % self.length
        self._ring[i] = crop
        self._ids[i] = frame_id
        self._count += 1

    def due(self) -> bool:
        """True when the window is full and ``stride`` crops arrived since the last clip taken."""
        return self._count >= self._next_at

    def clip(self) -> Clip:
        if not self.full:
            raise ValueError(f"the window holds {self._count} of {self.length} crops")
        start = self._count % self.length
        order = np.r_[start:self.length, 0:start]
        self._next_at = self._count + self.stride
        return Clip(self._ring[order], int(self._ids[order[0]]), int(self._ids[order[-1]]))
