"""Session summary from the per-frame series (pure computation)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .measures import ANGLE_COLUMNS, LENGTH_COLUMNS

PAIRED = ("eye_aperture", "mrd1", "brow_height", "commissure_height")


def _stats(x: np.ndarray) -> dict | None:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    p5, p50, p95 = np.percentile(x, [5, 50, 95])
    return {"median": round(float(p50), 3), "p05": round(float(p5), 3), "p95": round(float(p95), 3), "n": int(x.size)}


def summarize(table: pa.Table) -> dict:
    """Per-measure median and 5th/95th percentiles over frames with a face, and |L−R| of the
    medians for each paired measure (mm). Values are descriptive, not a clinical grade."""
    n = table.num_rows
    if n == 0:
        return {"face_found": False, "message": "no frames were processed"}
    face = np.asarray(table.column("face").to_numpy(zero_copy_only=False), bool)
    faces = np.asarray(table.column("faces").to_numpy(zero_copy_only=False))
    out: dict = {"face_found": bool(face.any()), "face_fraction": round(float(face.mean()), 4),
                 "frames_with_multiple_faces": int((faces > 1).sum())}
    if not face.any():
        out["message"] = "no face was found in any frame"
        return out
    measures = {}
    for col in LENGTH_COLUMNS + ANGLE_COLUMNS:
        x = np.asarray(table.column(col).to_numpy(zero_copy_only=False), float)[face]
        measures[col] = _stats(x)
    out["measures"] = measures
    asym = {}
    for name in PAIRED:
        left, right = measures.get(f"{name}_left_mm"), measures.get(f"{name}_right_mm")
        if left and right:
            asym[f"{name}_abs_diff_mm"] = round(abs(left["median"] - right["median"]), 3)
    out["asymmetry"] = asym
    return out
