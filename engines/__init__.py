"""Landmark engines behind one runner interface (activate / infer / deactivate).

Backends are chosen at run time by name and imported lazily.
"""

from .base import (
    BLENDSHAPE_NAMES,
    BackendUnavailable,
    LandmarkResult,
    LandmarkRunner,
    available_backends,
    create_runner,
)

__all__ = [
    "BLENDSHAPE_NAMES",
    "BackendUnavailable",
    "LandmarkResult",
    "LandmarkRunner",
    "available_backends",
    "create_runner",
]
