"""A session result as the plain text the command line prints."""

from __future__ import annotations

from monitor import DISCLAIMER
from monitor.measures.schema import pair_label
from monitor.measures.summary import SESSION, SessionSummary, StepSummary
from monitor.report.numbers import fmt


# the key measures of the step table: (median column, heading)
STEP_MEASURES = (("eye_aperture_left_mm", "eye L"), ("eye_aperture_right_mm", "eye R"),
                 ("mrd1_left_mm", "MRD1 L"), ("mrd1_right_mm", "MRD1 R"))


def step_rows(steps: dict[str, StepSummary], spans: list[dict] | None = None) -> list[dict]:
    """One row per protocol step: its name, status, start and end (s, where known), frames with a face
    and key medians (mm). ``spans`` are the planned steps in order (``step``, ``start_s``, ``end_s`` and
    optionally ``status``): from a steps file or the app's step records; without them, the measured steps."""
    plan = spans if spans is not None else [{"step": name} for name in steps if name != SESSION]
    rows = []
    for span in plan:
        measured = steps.get(span["step"])
        frames = measured.frames if measured else 0
        status = span.get("status") or ("no frames" if not frames else
                                        "not_performed" if measured.performed is False else "measured")
        rows.append({"step": span["step"], "status": status, "start_s": span.get("start_s"),
                     "end_s": span.get("end_s"), "frames": frames,
                     **{col: (measured.medians.get(col) if measured else None) for col, _ in STEP_MEASURES}})
    return rows


def format_steps(rows: list[dict]) -> list[str]:
    """The step table's lines (none without steps)."""
    if not rows:
        return []
    lines = [f"  {'step':<20} {'status':<10} {'start':>7} {'end':>7} {'frames':>6} "
             + " ".join(f"{h + ' mm':>9}" for _, h in STEP_MEASURES)]
    for r in rows:
        lines.append(f"  {r['step']:<20} {r['status']:<10} {fmt(r['start_s'], ' s'):>7} {fmt(r['end_s'], ' s'):>7} "
                     f"{r['frames']:>6} " + " ".join(f"{fmt(r[col]):>9}" for col, _ in STEP_MEASURES))
    return lines


def format_result(r: dict, spans: list[dict] | None = None) -> str:
    """A session result (``SessionResult.as_json()`` or a stored row) as the lines the CLI prints; with
    protocol steps (or ``spans``, see step_rows), the step table too."""
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
    lines += format_steps(step_rows(s.steps, spans))
    lines.append(f"series: {r['series_path']}")
    lines.append(DISCLAIMER)
    return "\n".join(lines)
