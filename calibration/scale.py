"""mm per pixel from the iris, carried by the face's rigid size.

The horizontal visible iris diameter is nearly constant across adults (11.7 mm on average, about
±0.5 mm between people), so the iris seen in the image gives the scale of the face. One frame's iris
width is noisy (a few pixels at webcam resolution), so the scale starts as the median over the first
frames in which the head is near frontal. The landmark model's iris also shifts by 1–2% when the
face around it changes (a lid that droops, a mouth corner that falls), which on a 60 mm measure is
about 1 mm. So once ``window`` frames are in, the ratio of the iris diameter to the face's rigid size
(the spread of the nose, forehead and temple landmarks, which expressions hardly move) is frozen, and
from then on mm per pixel follows that rigid size: it still tracks the head moving nearer or farther,
but no longer the face's expression. A person's own measured iris diameter overrides the default.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

DEFAULT_IRIS_MM = 11.7
IRIS_MM_RANGE = (9.0, 14.0)  # adult horizontal visible iris diameters, widely (the options accept these)


@dataclass
class IrisScale:
    """mm-per-pixel estimate from horizontal iris diameters in head-frame pixels, locked to the
    face's rigid size after ``window`` near-frontal frames."""

    iris_mm: float = DEFAULT_IRIS_MM
    window: int = 61  # frames that calibrate the scale (about 2 s at 30 fps)
    max_yaw_deg: float = 25.0  # frames turned further than this do not calibrate
    _iris: deque = field(default_factory=deque, repr=False)
    _ratios: list = field(default_factory=list, repr=False)
    _locked: float = field(default=math.nan, repr=False)  # iris diameter / rigid face size
    _current: float = field(default=math.nan, repr=False)

    def __post_init__(self) -> None:
        if not (5.0 <= self.iris_mm <= 20.0):
            raise ValueError(f"iris diameter {self.iris_mm} mm is not plausible (expected 5–20 mm)")
        if self.window < 1:
            raise ValueError("window must be at least 1 frame")
        self._iris = deque(maxlen=self.window)

    @property
    def locked(self) -> bool:
        return math.isfinite(self._locked)

    def update(self, diameter_left_px: float, diameter_right_px: float, yaw_deg: float,
               face_size_px: float = math.nan) -> float:
        """Add one frame's iris diameters (and the face's rigid size, pixels); return the current mm
        per pixel (NaN before any usable frame)."""
        size_ok = math.isfinite(face_size_px) and face_size_px > 0
        if self.locked:
            if size_ok:
                self._current = self.iris_mm / (self._locked * face_size_px)
            return self._current
        if abs(yaw_deg) <= self.max_yaw_deg:
            d = np.array([diameter_left_px, diameter_right_px], float)
            d = d[np.isfinite(d) & (d > 0)]
            if d.size:
                self._iris.append(float(d.mean()))
                if size_ok:
                    self._ratios.append(float(d.mean()) / face_size_px)
                    if len(self._ratios) >= self.window:
                        self._locked = float(np.median(self._ratios))
                        self._current = self.iris_mm / (self._locked * face_size_px)
                        return self._current
        if self._iris:
            self._current = self.iris_mm / float(np.median(self._iris))
        return self._current

    @property
    def mm_per_px(self) -> float:
        return self._current
