"""A photo set's session as text (``analyze --photo-set``) and as the rows of its per-pose table
(the CLI and the app's Photos tab): per-pose medians, static asymmetry at rest, each pose's movement
from rest, and the eFace estimate with what it left out."""

from __future__ import annotations

from monitor import DISCLAIMER
from monitor.measures.summary import SessionSummary
from monitor.protocol.poses import POSES, pose_for_step
from monitor.report.numbers import fmt

POSE_COLUMNS = ("eye_aperture", "mrd1", "brow_height", "commissure_height")  # the per-pose table, L/R each
SHORT = {"eye_aperture": "eye opening", "mrd1": "MRD1", "brow_height": "brow height",
         "commissure_height": "mouth corner"}
POSE_HEADERS = ["pose", "photo"] + [f"{c} {s} (mm)" for c in POSE_COLUMNS for s in ("left", "right")]


def _summary(r: dict) -> SessionSummary:
    return r["summary"] if isinstance(r["summary"], SessionSummary) else SessionSummary.from_dict(r["summary"])


def pose_rows(summary: SessionSummary, photo_set: dict | None = None) -> list[list]:
    """One row per pose with a face: pose, photo file, then left/right medians in mm."""
    files = {k: v.get("file", "") for k, v in ((photo_set or {}).get("poses") or {}).items()}
    rows = []
    for p in POSES:
        step = summary.step(p.step)
        if step is None:
            continue
        rows.append([p.name, files.get(p.name, "")] + [step.medians.get(f"{c}_{s}_mm") for c in POSE_COLUMNS
                                                       for s in ("left", "right")])
    return rows


def _pose_name(step: str) -> str:
    pose = pose_for_step(step)
    return pose.name if pose else step


def eface_lines(summary: SessionSummary) -> list[str]:
    """The eFace and House–Brackmann estimates, or why there is none."""
    palsy = summary.palsy or {}
    ef = palsy.get("eface_estimate")
    if not ef:
        return ["eFace estimate: none (needs the rest photo)"]
    lines = [f"eFace estimate (from landmarks, not a clinician's grade; 100 = symmetric): total {fmt(ef['total'])}, "
             f"static {fmt(ef['static'])}, dynamic {fmt(ef['dynamic'])}, synkinesis {fmt(ef['synkinesis'])}"]
    for item, v in ef["items"].items():
        lines.append(f"  {item:<40} {fmt(v):>6}")
    for item, pose in (ef.get("missing_poses") or {}).items():
        lines.append(f"  {item:<40}      — ({pose if pose.endswith('not performed') else f'no {pose} photo'})")
    hb = palsy.get("house_brackmann_estimate")
    if hb:
        lines.append(f"House–Brackmann estimate: grade {hb['roman']} (movement {fmt(hb['movement_mean_pct'], '%')}, "
                     f"eye closure {fmt(hb['eye_closure_pct'], '%')})")
    return lines


def format_photo_set(r: dict) -> str:
    """A photo-set session (``SessionResult.as_json()``) as the lines the CLI prints."""
    s = _summary(r)
    ps = r.get("photo_set") or {}
    lines = [f"session {r['session_id']} ({r['status']}): photo set, {r['frames']} photos, "
             f"{r['frames_with_face']} with a face"]
    if ps.get("missing"):
        lines.append(f"missing poses: {', '.join(ps['missing'])}")
    if not s.face_found:
        lines += [s.message or "no face found", f"series: {r['series_path']}", DISCLAIMER]
        return "\n".join(lines)
    lines.append(f"  {'pose':<22}{'photo':<22}" + "".join(f"{SHORT[c] + ' L / R (mm)':>24}" for c in POSE_COLUMNS))
    for row in pose_rows(s, ps):
        pairs = [f"{fmt(row[i])} / {fmt(row[i + 1])}" for i in range(2, len(row), 2)]
        lines.append(f"  {row[0]:<22}{row[1][:21]:<22}" + "".join(f"{p:>24}" for p in pairs))
    static = (s.asymmetry or {}).get("static") or {}
    if static and (s.asymmetry or {}).get("window") != "session":
        lines.append("static asymmetry at rest (|L − R|, weaker side):")
        for k, c in static.items():
            lines.append(f"  {k:<28} {fmt(c['abs_diff'], digits=2):>7}  {c['weaker_side']}")
    dynamic = (s.asymmetry or {}).get("dynamic") or {}
    if dynamic:
        lines.append("movement from rest (left / right, weaker side):")
        for step, c in dynamic.items():
            lines.append(f"  {_pose_name(step):<22} {c['measure']:<26} {fmt(c['left'], digits=2):>7} / "
                         f"{fmt(c['right'], digits=2):<7} {c['weaker_side']}")
    lines += eface_lines(s)
    lines += [f"series: {r['series_path']}", DISCLAIMER]
    return "\n".join(lines)
