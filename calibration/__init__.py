"""Turning raw model output into comparable physical measures (mm scale, head pose, baselines)."""

from calibration.scale import DEFAULT_IRIS_MM, IrisScale

__all__ = ["DEFAULT_IRIS_MM", "IrisScale"]
