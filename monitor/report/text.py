"""A session result as the plain text the command line prints."""

from __future__ import annotations

from monitor import DISCLAIMER
from monitor.measures.schema import pair_label
from monitor.measures.summary import SessionSummary
from monitor.report.numbers import fmt


def format_result(r: dict) -> str:
    """A session result (``SessionResult.as_json()`` or a stored row) as the lines the CLI prints."""
    fps = "" if r["processing_fps"] is None else f"{r['processing_fps']:.1f} fps, "  # photos have no frame rate
    lines = [f"session {r['session_id']} ({r['status']}): {r['frames']} frames, {r['frames_with_face']} with a face, "
             f"{fps}{r['dropped_frames']} dropped"]
    s = r["summary"] if isinstance(r["summary"], SessionSummary) else SessionSummary.from_dict(r["summary"])
    if not s.face_found:
        lines.append(s.message or "no face found")
    else:
        for name in ("eye_aperture", "mrd1", "brow_height", "commissure_height"):
            left, right = s.measure_median(f"{name}_left_mm"), s.measure_median(f"{name}_right_mm")
            lines.append(f"  {pair_label(name):<32} left {fmt(left, ' mm'):>9}   right {fmt(right, ' mm'):>9}   (median)")
    lines.append(f"series: {r['series_path']}")
    lines.append(DISCLAIMER)
    return "\n".join(lines)
