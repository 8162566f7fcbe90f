"""The landmark smoothing MediaPipe's face landmarker applies when it tracks a single face in video:
a One Euro filter (Casiez, Roussel & Vogel, CHI 2012) on every coordinate of every landmark, with the
velocity scaled by the face's size so the filter behaves the same at any distance from the camera.

Parameters are MediaPipe's for faces: minimum cutoff 0.05 Hz (an alpha of about 0.01 when a point
is still), beta 80 (about 0.94 when it moves fast), derivative cutoff 1 Hz; the rate starts at 30 Hz
and then follows the timestamps. Pure numpy over the (N, 3) pixel array; x, y and z (z in the same
pixel units as x) are filtered alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MIN_CUTOFF_HZ = 0.05
BETA = 80.0
DERIVATIVE_CUTOFF_HZ = 1.0
START_RATE_HZ = 30.0
MIN_OBJECT_SCALE_PX = 1e-6


def _alpha(cutoff_hz: np.ndarray | float, rate_hz: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz, np.float64))
    return 1.0 / (1.0 + tau * rate_hz)


def object_scale(points_px: np.ndarray) -> float:
    """The mean of the landmarks' bounding-box width and height, in pixels."""
    lo, hi = points_px[:, :2].min(0), points_px[:, :2].max(0)
    return float(((hi[0] - lo[0]) + (hi[1] - lo[1])) / 2.0)


@dataclass
class OneEuroSmoother:
    """One stream's filter state. ``reset`` when the face is lost; ``apply`` once per frame."""

    min_cutoff: float = MIN_CUTOFF_HZ
    beta: float = BETA
    derivative_cutoff: float = DERIVATIVE_CUTOFF_HZ
    rate_hz: float = START_RATE_HZ
    last_us: int = 0
    raw: np.ndarray | None = field(default=None, repr=False)  # last input (None until the first filtered frame)
    value: np.ndarray | None = field(default=None, repr=False)  # last output
    velocity: np.ndarray | None = field(default=None, repr=False)  # smoothed velocity, object sizes per second

    def reset(self) -> None:
        self.rate_hz, self.last_us, self.raw, self.value, self.velocity = START_RATE_HZ, 0, None, None, None

    def apply(self, points_px: np.ndarray, timestamp_us: int) -> np.ndarray:
        points = np.asarray(points_px, np.float64)
        scale = object_scale(points)
        if scale < MIN_OBJECT_SCALE_PX:
            return np.asarray(points_px, np.float32)
        if timestamp_us <= self.last_us:  # not later than the last frame: nothing to filter against
            return np.asarray(points_px, np.float32)
        if self.last_us != 0 and timestamp_us != 0:
            self.rate_hz = 1e6 / (timestamp_us - self.last_us)
        self.last_us = timestamp_us
        if self.raw is None:
            # MediaPipe's first filtered frame: the velocity filter starts at zero, the value passes through
            self.velocity = np.zeros_like(points)
            self.raw = self.value = points
            return np.asarray(points, np.float32)
        speed = (points - self.raw) / scale * self.rate_hz
        a_d = _alpha(self.derivative_cutoff, self.rate_hz)
        self.velocity = a_d * speed + (1.0 - a_d) * self.velocity
        a = _alpha(self.min_cutoff + self.beta * np.abs(self.velocity), self.rate_hz)
        self.value = a * points + (1.0 - a) * self.value
        self.raw = points
        return self.value.astype(np.float32)
