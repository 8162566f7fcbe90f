"""mm per pixel from the iris.

The horizontal visible iris diameter is nearly constant across adults (11.7 mm on average, about
±0.5 mm between people), so the iris seen in the image gives the scale of the face. One frame's iris
width is noisy (a few pixels at webcam resolution), so the scale is the median over the recent
frames in which the head is near frontal. A person's own measured diameter overrides the default.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

DEFAULT_IRIS_MM = 11.7


@dataclass
class IrisScale:
    """Running mm-per-pixel estimate from horizontal iris diameters in head-frame pixels."""

    iris_mm: float = DEFAULT_IRIS_MM
    window: int = 61  # frames in the running median (about 2 s at 30 fps)
    max_yaw_deg: float = 25.0  # frames turned further than this do not update the scale
    _recent: deque = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        if not (5.0 <= self.iris_mm <= 20.0):
            raise ValueError(f"iris diameter {self.iris_mm} mm is not plausible (expected 5–20 mm)")
        if self.window < 1:
            raise ValueError("window must be at least 1 frame")
        self._recent = deque(maxlen=self.window)

    def update(self, diameter_left_px: float, diameter_right_px: float, yaw_deg: float) -> float:
        """Add one frame's iris diameters; return the current mm per pixel (NaN before any)."""
        if abs(yaw_deg) <= self.max_yaw_deg:
            d = np.array([diameter_left_px, diameter_right_px], float)
            d = d[np.isfinite(d) & (d > 0)]
            if d.size:
                self._recent.append(float(d.mean()))
        return self.mm_per_px

    @property
    def mm_per_px(self) -> float:
        if not self._recent:
            return float("nan")
        return self.iris_mm / float(np.median(self._recent))
