"""What the Results and Review tabs show of logged sessions, without Gradio: a session's text,
step table and notes, the session list, exports and trends.

Functions here take a ``Store`` (or plain data) and return text, data frames or small frozen
dataclasses, so they are tested without a browser; the tab modules only put them on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from monitor import DISCLAIMER
from monitor.protocol.steps import ALL_STEPS
from monitor.report.numbers import fmt
from monitor.report.tables import TREND_MEASURES, TrendPoint, session_values, step_table, trend
from monitor.report.writers import export_session
from monitor.store.db import SessionRow, Store

EARLIER_SHOWN = 5  # earlier sessions of the same person listed under a result
SESSIONS_LISTED = 500  # at most this many sessions in the Review tab's list
STEP_ROW_PX = 40  # a generous height of one row of the steps table on the page
STEPS_TABLE_PX = STEP_ROW_PX * (len(ALL_STEPS) + 1)  # the steps table shows every step without scrolling
STEP_COLUMNS = {"step": "step", "status": "status", "counted_s": "counted (s)", "attempts": "attempts",
                "eye_aperture_left_mm": "eye opening L (mm)", "eye_aperture_right_mm": "eye opening R (mm)",
                "mrd1_left_mm": "MRD1 L (mm)", "mrd1_right_mm": "MRD1 R (mm)",
                "expression_strength": "expression strength (0–1)"}


def cnn_markdown(cnn: dict | None) -> list[str]:
    """The 3D-CNN's votes, only for a model with a card, and always with the card's validation figures."""
    if not cnn or cnn.get("benchmark") or not cnn.get("model"):
        return []
    classes = cnn.get("classes") or ["class 0", "class 1"]
    lines = ["", "**Research model (3D-CNN) — not a diagnosis**",
             f"- Model: {cnn['model']}" + (" **Trained on synthetic data: its output means nothing about this "
                                            "person.**" if cnn.get("synthetic") else ""),
             f"- Clips scored: {cnn.get('clips', 0)} ({cnn['stats'].get('clips_per_s', '—')} clips/s, "
             f"{cnn['stats'].get('skipped', 0)} skipped for newer ones)"]
    if cnn.get("steps"):
        lines.append("- Per step (mean probability of " + f"{classes[1]}, 0–1 → decision): " + "; ".join(
            f"{k} {v['mean_p']:.2f} → {v['decision']}" for k, v in cnn["steps"].items()))
    votes = cnn.get("votes") or [0, 0]
    decision = cnn.get("decision") or "undecided"
    lines.append(f"- Majority vote over {'steps' if cnn.get('level') == 'steps' else 'clips'}: {classes[0]} "
                 f"{votes[0]}, {classes[1]} {votes[1]} → **{decision}**")
    return lines


def _key_measures(values: dict) -> list[str]:
    lines = ["**Key measures (neutral step, median)**"]
    for k, m in TREND_MEASURES.items():
        if k in values:
            lines.append(f"- {m.label}: {fmt(values[k], f' {m.unit}' if m.unit else '', 2)}")
    return lines


def _asymmetry_lines(static: dict) -> list[str]:
    if not static:
        return []
    lines = ["", "**Left/right at rest** (patient's sides; weaker side named only beyond the noise)"]
    for name, a in static.items():
        lines.append(f"- {name.replace('_', ' ')}: left {fmt(a.get('left'))}, right {fmt(a.get('right'))}, "
                     f"difference {fmt(a.get('abs_diff'))} ({fmt(a.get('diff_pct_of_stronger'))} %), "
                     f"weaker: {a.get('weaker_side')}")
    return lines


def _eface_lines(palsy: dict | None) -> list[str]:
    ef = (palsy or {}).get("eface_estimate")
    if not ef:
        return []
    return ["", f"**eFace-style estimate** (0–100, 100 = symmetric; an estimate from landmarks, not a "
                f"clinician's grade): static {fmt(ef.get('static'))}, dynamic {fmt(ef.get('dynamic'))}, "
                f"total {fmt(ef.get('total'))}"]


def _baseline_lines(vs_baseline: dict | None, baseline_saved: bool) -> list[str]:
    if vs_baseline:
        lines = ["", f"**Compared with this person's baseline** (session {vs_baseline.get('baseline_session')}; "
                     "this session − baseline, mm)"]
        for k, d in vs_baseline.get("difference", {}).items():
            if k in TREND_MEASURES:
                lines.append(f"- {TREND_MEASURES[k].label}: {d:+.2f} mm")
        return lines
    if baseline_saved:
        return ["", "This was the person's first check: its neutral step is now their baseline."]
    return []


def _earlier_lines(earlier: list[SessionRow]) -> list[str]:
    if not earlier:
        return []
    lines = ["", "**Earlier sessions of this person** (neutral medians, mm)", "",
             "| session | eye opening L | eye opening R | MRD1 L | MRD1 R |", "|---|---|---|---|---|"]
    for r in earlier[:EARLIER_SHOWN]:
        v = session_values(r.summary)
        lines.append(f"| {r.created_at[:16]} | {fmt(v.get('eye_aperture_left_mm'))} | "
                     f"{fmt(v.get('eye_aperture_right_mm'))} | {fmt(v.get('mrd1_left_mm'))} | "
                     f"{fmt(v.get('mrd1_right_mm'))} |")
    return lines


def results_markdown(row: SessionRow, values: dict, earlier: list[SessionRow]) -> str:
    """A session as the Results and Review tabs describe it: who and what, its key measures, left/right
    at rest, the eFace-style estimate, the baseline comparison, the 3D-CNN (with its card) and the
    person's earlier sessions. ``values`` is ``session_values(row.summary)``."""
    s = row.summary
    lines = [f"### Session {row.id}", f"Person **{row.person or '—'}** · protocol **{row.protocol or '—'}** "
             f"({row.protocol_status or '—'}) · {row.frames} frames, {row.frames_with_face} with a face",
             "", f"*{DISCLAIMER} Definitions of every figure are in docs/app.md.*", ""]
    if s is None or not s.face_found:
        return "\n".join(lines + [s.message if s is not None and s.message is not None else "No face was found."])
    lines += _key_measures(values)
    lines += _asymmetry_lines(s.asymmetry.get("static") or {})
    lines += _eface_lines(s.palsy)
    lines += _baseline_lines(s.vs_baseline, s.baseline_saved)
    lines += cnn_markdown(s.cnn)
    lines += _earlier_lines(earlier)
    return "\n".join(lines)


def step_frame(rows: list[dict]) -> pd.DataFrame:
    """The step table (``report.tables.step_table`` rows) with the page's column names, rounded."""
    df = pd.DataFrame([{v: r.get(k) for k, v in STEP_COLUMNS.items()} for r in rows],
                      columns=list(STEP_COLUMNS.values()))
    return df.round(2)


def notes_markdown(notes: list[dict]) -> str:
    if not notes:
        return "*No notes yet.*"
    return "**Notes**\n\n" + "\n".join(f"- {n['at'][:16]} {n['author'] or ''}: {n['text']}" for n in notes)


@dataclass(frozen=True)
class SessionView:
    """One logged session as the Results and Review tabs show it."""

    row: SessionRow
    markdown: str
    steps: pd.DataFrame
    series: pa.Table
    notes: list[dict]

    @property
    def video(self) -> str | None:
        """The kept video's path, when the person opted in and the file is still there."""
        path = self.row.video_path
        return path if path and Path(path).is_file() else None


def session_view(store: Store, sid: str) -> SessionView:
    """The session ``sid`` (an id or a unique prefix) read from the store; StoreError when there is none."""
    row = store.get_session(sid)
    earlier = [r for r in store.list_sessions(person=row.person) if r.id != row.id] if row.person else []
    return SessionView(row, results_markdown(row, session_values(row.summary), earlier),
                       step_frame(step_table(row.summary, store.steps(row.id))), store.read_series(row.id),
                       store.notes(row.id))


@dataclass(frozen=True)
class SessionFilter:
    """The Review tab's filters; an empty field does not filter."""

    person: str = ""
    status: str = ""
    protocol: str = ""
    since: str = ""  # YYYY-MM-DD
    until: str = ""


def find_sessions(store: Store, f: SessionFilter) -> list[SessionRow]:
    return store.list_sessions(f.status or None, SESSIONS_LISTED, person=f.person or None,
                               protocol=f.protocol or None, since=(f.since or "").strip() or None,
                               until=(f.until or "").strip() or None)


def session_table(rows: list[SessionRow]) -> pd.DataFrame:
    """The Review tab's list of sessions, one line each."""
    return pd.DataFrame([{"session": r.id, "recorded (UTC)": r.created_at[:19], "person": r.person or "",
                          "protocol": r.protocol or "", "protocol status": r.protocol_status or "",
                          "status": r.status, "frames": r.frames, "video kept": "yes" if r.video_path else ""}
                         for r in rows])


def add_note(store: Store, sid: str | None, text: str, author: str | None) -> list[dict]:
    """Save a clinician's note on the session; returns its notes. StoreError for an empty note or no session."""
    store.add_note(sid or "", text, author)
    return store.notes(store.get_session(sid).id)


def export_link(store: Store, sid: str, fmt_name: str) -> str:
    """Export the session (csv, json or pdf) into the store's exports folder; HTML linking to the file."""
    path = export_session(store, sid, fmt_name)
    return f'<a href="/exports/{path.name}" download class="fm-export">{path.name}</a> (saved in {path.parent})'


@dataclass(frozen=True)
class TrendView:
    """One measure of one person across sessions, with the deterioration flag explained."""

    measure: str
    points: list[TrendPoint]
    text: str


def trend_text(points: list[TrendPoint], measure: str) -> str:
    m = TREND_MEASURES[measure]
    flagged = [p for p in points if p.flagged]
    text = (f"{len(points)} session(s) with {m.label.lower()}. Flag: worse than the baseline by "
            f"{m.min_change:g} {m.unit} or more. ")
    text += (f"**Flag: {len(flagged)} session(s) worse than the baseline**, latest {flagged[-1].created_at[:16]} "
             f"({flagged[-1].change:+.2f} {m.unit})." if flagged else "No session is flagged.")
    return text


def trend_view(store: Store, person: str, measure: str) -> TrendView:
    """The person's sessions, oldest first, against their stored baseline (else their first session)."""
    rows = store.list_sessions(person=person, limit=1000, oldest_first=True)
    base = store.latest_baseline(person)
    points = trend(rows, measure, base.session_id if base else None)
    return TrendView(measure, points, trend_text(points, measure))
