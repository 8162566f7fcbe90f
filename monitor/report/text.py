"""A session result as the plain text the command line prints."""

from __future__ import annotations

import math

from monitor import DISCLAIMER


def _fmt(v, unit: str = "") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}{unit}"


def format_result(r: dict) -> str:
    lines = [f"session {r['session_id']} ({r['status']}): {r['frames']} frames, {r['frames_with_face']} with a face, "
             f"{r['processing_fps']:.1f} fps, {r['dropped_frames']} dropped"]
    s = r["summary"]
    if not s.get("face_found"):
        lines.append(s.get("message", "no face found"))
    else:
        m = s["measures"]
        for name, label in (("eye_aperture", "eye aperture"), ("mrd1", "MRD1"), ("brow_height", "brow height"),
                            ("commissure_height", "mouth corner below eye line")):
            left, right = m.get(f"{name}_left_mm"), m.get(f"{name}_right_mm")
            lines.append(f"  {label:<28} left {_fmt(left and left['median'], ' mm'):>9}   "
                         f"right {_fmt(right and right['median'], ' mm'):>9}   (median)")
    lines.append(f"series: {r['series_path']}")
    lines.append(DISCLAIMER)
    return "\n".join(lines)
