"""Checked wrappers around the numba kernels."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from monitor.measures import face_model as L
from monitor.measures.kernels import _eyelid as E
from monitor.measures.kernels import _gates as G
from monitor.measures.kernels import _mouth as M
from monitor.measures.kernels._eyelid import EYE_OUT
from monitor.measures.kernels._eyelid import eyelids as _eyelids
from monitor.measures.kernels._gates import EVIDENCE_OUT
from monitor.measures.kernels._gates import eye_evidence as _eye_evidence
from monitor.measures.kernels._geometry import rigid_size
from monitor.measures.kernels._measures import N_OUT, frame_measures_px, frame_measures_px_batch
from monitor.measures.kernels._mouth import MOUTH_OUT
from monitor.measures.kernels._mouth import mouth_corners as _mouth_corners
from monitor.measures.kernels._pose import head_angles_deg, head_angles_deg_batch
from monitor.measures.kernels._smooth import median_filter_nan
from monitor.measures.kernels._trend import theil_sen_slope

# Names of frame_measures' outputs, in head-frame pixel units (see docs/measures.md).
MEASURE_NAMES = (
    "eye_aperture_left", "eye_aperture_right",
    "mrd1_left", "mrd1_right",
    "brow_height_left", "brow_height_right",
    "commissure_height_left", "commissure_height_right",
    "intercanthal",
    "iris_diameter_left", "iris_diameter_right",
    "commissure_excursion_left", "commissure_excursion_right",
    "smile_angle_left", "smile_angle_right",
    "dental_show_left", "dental_show_right",
    "gaze_horizontal_left", "gaze_horizontal_right",
    "gaze_vertical_left", "gaze_vertical_right",
)
# which outputs are angles (degrees, not scaled) and areas (scaled by mm_per_px²)
ANGLE_OUTPUTS = frozenset({"smile_angle_left", "smile_angle_right"})
AREA_OUTPUTS = frozenset({"dental_show_left", "dental_show_right"})
assert len(MEASURE_NAMES) == N_OUT
HEAD_MEASURES = ("yaw_deg", "pitch_deg", "roll_deg")
# frame_measures' output slots by name: out[Measure.iris_diameter_left]
Measure = IntEnum("Measure", {name: i for i, name in enumerate(MEASURE_NAMES)})


class EyeSlot(IntEnum):
    """The slots of one eye's row in eyelids()' output (monitor/measures/kernels/_eyelid.py)."""

    T_UPPER = E.T_UPPER  # upper lid margin, image px along the head's down axis from the landmark iris centre
    T_LOWER = E.T_LOWER  # lower lid margin
    T_CENTRE = E.T_CENTRE  # refined iris centre
    C_UPPER = E.C_UPPER  # upper edge contrast (Weber)
    C_LOWER = E.C_LOWER  # lower edge contrast
    IRIS_SCORE = E.IRIS_SCORE  # limbus edge strength of the refined centre
    T_UPPER_LM = E.T_UPPER_LM  # the landmark upper lid at the pupil column
    T_LOWER_LM = E.T_LOWER_LM  # the landmark lower lid at the pupil column
    IN_FRAME = E.IN_FRAME  # fraction of the profile inside the image
    RADIUS = E.RADIUS  # iris radius, image px


class MouthSlot(IntEnum):
    """The slots of one side's row in mouth_corners()' output (monitor/measures/kernels/_mouth.py)."""

    SEAM_SHIFT = M.SEAM_SHIFT  # lip seam below the landmark seam, image px along the head's down axis
    SEAM_CONTRAST = M.SEAM_CONTRAST
    SEAM_COLUMNS = M.SEAM_COLUMNS  # columns that found the seam
    HEIGHT_SHIFT = M.HEIGHT_SHIFT  # the change of the commissure height it makes, head-frame px
    LIP_GAP = M.LIP_GAP  # inner lips' gap at the midline, mouth widths (above MAX_LIP_GAP: no seam is sought)


class EvidenceSlot(IntEnum):
    """The slots of one eye's row in eye_evidence()' output (monitor/measures/kernels/_gates.py)."""

    IRIS_LUMA = G.IRIS_LUMA  # mean luma (0–255) at the mesh's iris centre
    SCLERA_LUMA = G.SCLERA_LUMA  # the brighter sclera side's mean luma, between the iris ring and a corner

_IDX = np.array(
    [L.LEFT_IRIS_CENTER, L.RIGHT_IRIS_CENTER, L.LEFT_EYE_INNER, L.RIGHT_EYE_INNER,
     L.LEFT_MOUTH_CORNER, L.RIGHT_MOUTH_CORNER,
     L.LEFT_IRIS_RING[0], L.LEFT_IRIS_RING[2], L.RIGHT_IRIS_RING[0], L.RIGHT_IRIS_RING[2],
     L.LOWER_LIP_MID, L.LEFT_EYE_OUTER, L.RIGHT_EYE_OUTER],
    np.int64,
)
_CONTOURS = (L.LEFT_UPPER_LID_CONTOUR, L.LEFT_LOWER_LID_CONTOUR, L.RIGHT_UPPER_LID_CONTOUR,
             L.RIGHT_LOWER_LID_CONTOUR, L.LEFT_BROW_CONTOUR, L.RIGHT_BROW_CONTOUR)


def _as_float(name: str, a, shape_tail: tuple, batch: bool) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be numeric, got dtype {a.dtype}")
    want_ndim = len(shape_tail) + (1 if batch else 0)
    if a.ndim != want_ndim or a.shape[-len(shape_tail):] != shape_tail:
        lead = "(N, " if batch else "("
        raise ValueError(
            f"{name} must have shape {lead}{', '.join(map(str, shape_tail))}), got {a.shape}"
            + ("; pass one frame to the unbatched function" if batch and a.ndim == len(shape_tail) else "")
        )
    return np.ascontiguousarray(a, dtype=np.float64)


def _rotation(name: str, m, batch: bool) -> np.ndarray:
    m = np.asarray(m)
    if m.shape[-2:] == (4, 4):
        m = m[..., :3, :3]
    return _as_float(name, m, (3, 3), batch)


def frame_measures(landmarks_px, rotation) -> np.ndarray:
    """Per-frame measures in head-frame pixel units, ordered as MEASURE_NAMES.

    landmarks_px: (478, 3) image coordinates (x, y in pixels, z scaled like x).
    rotation: (3, 3) rotation or (4, 4) facial transformation matrix from the landmarker.
    """
    pts = _as_float("landmarks_px", landmarks_px, (L.N_LANDMARKS, 3), False)
    rot = _rotation("rotation", rotation, False)
    out = np.empty(N_OUT)
    frame_measures_px(pts, rot, *_CONTOURS, _IDX, L.LEFT_INNER_LIP, L.RIGHT_INNER_LIP, out,
                      np.empty((L.N_LANDMARKS, 3)))
    return out


def frame_measures_batch(landmarks_px, rotations) -> np.ndarray:
    """frame_measures over N frames: (N, 478, 3) and (N, 3, 3)|(N, 4, 4) → (N, len(MEASURE_NAMES))."""
    pts = _as_float("landmarks_px", landmarks_px, (L.N_LANDMARKS, 3), True)
    rots = _rotation("rotations", rotations, True)
    if rots.shape[0] != pts.shape[0]:
        raise ValueError(f"{pts.shape[0]} landmark frames but {rots.shape[0]} rotations")
    out = np.empty((pts.shape[0], N_OUT))
    frame_measures_px_batch(pts, rots, *_CONTOURS, _IDX, L.LEFT_INNER_LIP, L.RIGHT_INNER_LIP, out)
    return out


_IRIS = np.array([L.LEFT_IRIS_CENTER, L.RIGHT_IRIS_CENTER], np.int64)
_RING = np.array([L.LEFT_IRIS_RING[0], L.LEFT_IRIS_RING[2], L.RIGHT_IRIS_RING[0], L.RIGHT_IRIS_RING[2]], np.int64)


def eyelids(image_rgb, landmarks_px, rotation) -> np.ndarray:
    """Image-refined lid margins and iris centre of both eyes: (2, EYE_OUT), row 0 the patient's left.

    image_rgb: (H, W, 3) uint8. Slots (image pixels along the head's down axis, from the landmark iris
    centre; see monitor/measures/kernels/_eyelid.py): upper lid, lower lid, iris centre, upper and lower edge
    contrast, iris edge score, landmark upper and lower lid, fraction of the profile in the image,
    iris radius.
    """
    img = _image(image_rgb)
    pts = _as_float("landmarks_px", landmarks_px, (L.N_LANDMARKS, 3), False)
    rot = _rotation("rotation", rotation, False)
    out = np.empty((2, EYE_OUT))
    _eyelids(img, pts, rot, _IRIS, _RING, L.LEFT_UPPER_LID_CONTOUR, L.LEFT_LOWER_LID_CONTOUR,
             L.RIGHT_UPPER_LID_CONTOUR, L.RIGHT_LOWER_LID_CONTOUR, out)
    return out


def _image(image_rgb) -> np.ndarray:
    img = np.asarray(image_rgb)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image_rgb must be an (H, W, 3) uint8 RGB image, got {img.dtype} {img.shape}")
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise ValueError(f"image_rgb is too small: {img.shape}")
    return np.ascontiguousarray(img)


_CORNERS = np.array([L.LEFT_MOUTH_CORNER, L.RIGHT_MOUTH_CORNER], np.int64)
_CANTHI = np.array([L.LEFT_EYE_INNER, L.RIGHT_EYE_INNER], np.int64)
_MIDLINE = np.array([L.UPPER_LIP_INNER_MID, L.LOWER_LIP_INNER_MID], np.int64)


def mouth_corners(image_rgb, landmarks_px, rotation) -> np.ndarray:
    """Image-refined height of both mouth corners: (2, MOUTH_OUT), row 0 the patient's left.

    Slots (see monitor/measures/kernels/_mouth.py): the lip seam's shift from the landmark seam beside the
    corner (image pixels along the head's down axis), its contrast, the number of columns that found
    it, the resulting change of the commissure height (head-frame pixels; NaN where no seam), and the
    inner lips' gap at the midline in mouth widths (the seam is sought only when it is at most MAX_LIP_GAP).
    """
    img = _image(image_rgb)
    pts = _as_float("landmarks_px", landmarks_px, (L.N_LANDMARKS, 3), False)
    rot = _rotation("rotation", rotation, False)
    out = np.empty((2, MOUTH_OUT))
    _mouth_corners(img, pts, rot, _CORNERS, _CANTHI, _MIDLINE, L.LEFT_UPPER_SEAM, L.LEFT_LOWER_SEAM, L.RIGHT_UPPER_SEAM,
                   L.RIGHT_LOWER_SEAM, out)
    return out


_EYES = np.array([[L.LEFT_IRIS_CENTER, L.LEFT_IRIS_RING[0], L.LEFT_IRIS_RING[2], L.LEFT_EYE_INNER, L.LEFT_EYE_OUTER],
                  [L.RIGHT_IRIS_CENTER, L.RIGHT_IRIS_RING[0], L.RIGHT_IRIS_RING[2], L.RIGHT_EYE_INNER,
                   L.RIGHT_EYE_OUTER]], np.int64)


def eye_evidence(image_rgb, landmarks_px) -> np.ndarray:
    """Image evidence that the mesh's eyes are eyes: (2, EVIDENCE_OUT), row 0 the patient's left. Slots
    (see monitor/measures/kernels/_gates.py): mean luma at the iris centre, and the brighter sclera side's
    mean luma between the iris ring and the eye corner; NaN where the samples leave the image."""
    img = _image(image_rgb)
    pts = _as_float("landmarks_px", landmarks_px, (L.N_LANDMARKS, 3), False)
    out = np.empty((2, EVIDENCE_OUT))
    _eye_evidence(img, pts, _EYES, out)
    return out


def face_size(landmarks_px) -> float:
    """The face's size in the image (pixels): RMS 3D distance of the rigid landmarks (landmarks.RIGID)
    from their centroid."""
    return float(rigid_size(_as_float("landmarks_px", landmarks_px, (L.N_LANDMARKS, 3), False), L.RIGID))


def head_angles(rotation) -> np.ndarray:
    """(yaw, pitch, roll) in degrees; signs in docs/measures.md."""
    out = np.empty(3)
    head_angles_deg(_rotation("rotation", rotation, False), out)
    return out


def head_angles_batch(rotations) -> np.ndarray:
    rots = _rotation("rotations", rotations, True)
    out = np.empty((rots.shape[0], 3))
    head_angles_deg_batch(rots, out)
    return out


def median5(x) -> np.ndarray:
    """5-point centred running median that ignores NaN (for measure curves)."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"median5 takes a 1-D series, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    out = np.empty_like(a)
    median_filter_nan(a, 5, out)
    return out


def theil_sen(t, y) -> float:
    """Theil–Sen slope of y over t (units of y per unit of t); NaN values are skipped."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if t.ndim != 1 or t.shape != y.shape:
        raise ValueError(f"theil_sen takes two 1-D arrays of one length, got {t.shape} and {y.shape}")
    return float(theil_sen_slope(t, y))
