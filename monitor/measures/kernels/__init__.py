"""Per-frame measures as numba kernels, with checked public wrappers.

Private ``@njit`` kernels live in their own files (so ``cache=True`` invalidates correctly); the
wrappers here check dtype and shape and say how to fix a wrong call. ``monitor/measures/kernels/reference.py``
holds the plain-numpy references that the tests compare each kernel with.
"""

from monitor.measures.kernels.api import (
    HEAD_MEASURES,
    MEASURE_NAMES,
    EvidenceSlot,
    EyeSlot,
    Measure,
    MouthSlot,
    eye_evidence,
    eyelids,
    face_size,
    frame_measures,
    frame_measures_batch,
    head_angles,
    head_angles_batch,
    median5,
    mouth_corners,
    theil_sen,
)

__all__ = [
    "HEAD_MEASURES",
    "Measure",
    "EvidenceSlot",
    "EyeSlot",
    "MouthSlot",
    "MEASURE_NAMES",
    "eye_evidence",
    "eyelids",
    "face_size",
    "frame_measures",
    "frame_measures_batch",
    "head_angles",
    "head_angles_batch",
    "median5",
    "mouth_corners",
    "theil_sen",
]
