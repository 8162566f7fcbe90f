"""How closely one landmark backend reproduces another on the same frames: landmarks as a fraction
of the intercanthal distance, blendshapes, and every millimetre series column."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from monitor.lab.validation import run_measures
from monitor.measures.face_model import LEFT_EYE_INNER, RIGHT_EYE_INNER
from monitor.measures.schema import REFINED_COLUMNS

# the parity targets of the ONNX/TensorRT backends against MediaPipe (docs/performance.md)
MAX_LANDMARK_PCT_IOD = 1.0  # mean landmark distance, % of the intercanthal distance
MAX_BLENDSHAPE_DIFF = 0.05
# every frame of every column computed from the landmarks alone; the image-refined eyelid and lip
# columns (measures.REFINED_COLUMNS) at the 95th percentile, since their edge search can pick another
# edge on a 0.02 px change of the landmarks (docs/performance.md); their maximum is reported beside it
MAX_SERIES_DIFF_MM = 0.3



@dataclass(frozen=True)
class ParityReport:
    frames: int
    frames_compared: int  # frames where both found a face
    face_disagreements: int
    landmark_pct_iod_mean: float
    landmark_pct_iod_p95: float
    blendshape_max_diff: float
    blendshape_mean_diff: float
    series_max_diff_mm: float
    series_p95_diff_mm: float
    worst_series_column: str
    landmark_series_max_diff_mm: float  # the columns computed from the landmarks alone, every frame

    def passes(self) -> bool:
        return (self.frames_compared > 0 and self.face_disagreements == 0
                and self.landmark_pct_iod_mean <= MAX_LANDMARK_PCT_IOD
                and self.blendshape_max_diff <= MAX_BLENDSHAPE_DIFF
                and self.series_p95_diff_mm <= MAX_SERIES_DIFF_MM
                and self.landmark_series_max_diff_mm <= MAX_SERIES_DIFF_MM)

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def refined_beyond(ref: dict, got: dict, limit_mm: float = MAX_SERIES_DIFF_MM) -> int:
    """How many (frame, column) values of the image-refined columns differ by more than ``limit_mm``
    where both runs have them."""
    n = 0
    for col in REFINED_COLUMNS:
        x, y = np.asarray(ref[col], float), np.asarray(got[col], float)
        ok = np.isfinite(x) & np.isfinite(y)
        n += int((np.abs(x[ok] - y[ok]) > limit_mm).sum())
    return n


def compare_runs(ref: dict, got: dict) -> ParityReport:
    """Compare two ``run_measures`` outputs over the same frames."""
    face_ref = np.isfinite(ref["landmarks"][:, 0, 0])
    face_got = np.isfinite(got["landmarks"][:, 0, 0])
    both = face_ref & face_got
    if not both.any():
        return ParityReport(len(face_ref), 0, int((face_ref != face_got).sum()), np.inf, np.inf, np.inf, np.inf,
                            np.inf, np.inf, "", np.inf)
    a, b = ref["landmarks"][both, :, :2], got["landmarks"][both, :, :2]
    iod = np.linalg.norm(a[:, RIGHT_EYE_INNER] - a[:, LEFT_EYE_INNER], axis=1)
    pct = np.linalg.norm(a - b, axis=2).mean(axis=1) / iod * 100
    blend = np.abs(ref["blendshapes"][both] - got["blendshapes"][both])
    worst_col, worst, diffs, landmark_worst = "", 0.0, [], 0.0
    for col in sorted(k for k in ref if k.endswith("_mm")):
        x, y = np.asarray(ref[col][both], float), np.asarray(got[col][both], float)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            continue
        d = np.abs(x[ok] - y[ok])
        diffs.append(d)
        if col not in REFINED_COLUMNS:
            landmark_worst = max(landmark_worst, float(d.max()))
        if d.max() > worst:
            worst_col, worst = col, float(d.max())
    all_d = np.concatenate(diffs) if diffs else np.zeros(1)
    return ParityReport(len(face_ref), int(both.sum()), int((face_ref != face_got).sum()), float(pct.mean()),
                        float(np.percentile(pct, 95)), float(blend.max()), float(blend.mean()), worst,
                        float(np.percentile(all_d, 95)), worst_col, landmark_worst)


# the MediaPipe configuration each tracking mode of the ONNX/TensorRT pipeline reproduces: looking for
# up to four faces re-detects on every frame; looking for one tracks it and smooths its landmarks
MEDIAPIPE_FOR_TRACKING = {"detector": {"max_faces": 4}, "landmarks": {"max_faces": 1}}


def compare_backends(frames: list, fps: float, candidate: str = "onnx", reference: str = "mediapipe",
                     tracking: str = "detector", **candidate_options) -> ParityReport:
    """``candidate`` in the given tracking mode against ``reference`` (MediaPipe configured as that
    mode reproduces it)."""
    ref_options = MEDIAPIPE_FOR_TRACKING[tracking] if reference == "mediapipe" else {}
    return compare_runs(run_measures(frames, fps, backend=reference, **ref_options),
                        run_measures(frames, fps, backend=candidate, tracking=tracking, **candidate_options))
