"""How the 3D-CNN runs beside the landmark path."""

from enum import StrEnum


class CnnMode(StrEnum):
    LIVE = "live"  # a background thread at lower priority; the newest clip wins (live and app)
    ALL = "all"  # every clip, in the frame path (analyze)
