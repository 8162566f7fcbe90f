"""Landmark engines behind one runner interface (activate / infer / deactivate).

Backends are chosen at run time by name and imported lazily.
"""

# first, so that native libraries imported anywhere in the project find their log levels set
from engines import native  # noqa: F401
from engines.base import (
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
