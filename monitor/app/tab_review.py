"""The Review tab: logged sessions (filters, list, one opened with its replay plot, fatigability, kept
video and notes), clinician notes, exports, and a person's trend with the deterioration flag.

The content comes from AppCore and monitor/app/review.py; this module lays it out and wires the
handlers, each returning a named result (see monitor/app/outputs.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from monitor.app.core import AppCore
from monitor.app.outputs import KEEP, Outputs, listen
from monitor.app.review import STEPS_TABLE_PX, SessionFilter, notes_markdown, session_table
from monitor.app.tab_results import EXPORT_FORMATS, wire_exports
from monitor.errors import FacemonitorError
from monitor.report.plots import plot_fatigue, plot_session, plot_trend
from monitor.report.tables import TREND_MEASURES

STATUSES = ["", "complete", "incomplete", "running", "failed"]


@dataclass(frozen=True)
class ReviewTab:
    person: gr.Dropdown  # filters
    status: gr.Dropdown
    protocol: gr.Dropdown
    since: gr.Textbox
    until: gr.Textbox
    refresh: gr.Button
    sessions: gr.Dataframe
    chosen: gr.Dropdown  # the session to open
    open: gr.Button
    text: gr.Markdown
    steps: gr.Dataframe
    plot: gr.Plot
    fatigue: gr.Plot
    video: gr.Video
    notes: gr.Markdown
    note_author: gr.Textbox
    note_text: gr.Textbox
    note_save: gr.Button
    exports: dict[str, gr.Button]  # format → its button
    links: gr.HTML
    trend_person: gr.Dropdown
    trend_measure: gr.Dropdown
    trend_show: gr.Button
    trend_plot: gr.Plot
    trend_text: gr.Markdown


@dataclass(frozen=True)
class SessionsListed:
    sessions: object  # pandas.DataFrame
    chosen: object  # gr.update(choices=..., value=...)


@dataclass(frozen=True)
class SessionOpened:
    text: str
    steps: object = None  # pandas.DataFrame
    plot: object = None  # matplotlib figures
    fatigue: object = None
    video: str | None = None
    notes: str = ""


@dataclass(frozen=True)
class NoteSaved:
    notes: str
    note_text: object  # "" clears the box; KEEP leaves an unsaved note in it


@dataclass(frozen=True)
class TrendShown:
    trend_plot: object  # a matplotlib figure, or None
    trend_text: str


def _sessions_block(core: AppCore) -> dict:
    with gr.Row():
        c = {"person": gr.Dropdown([""] + core.people(), value="", label="Person", allow_custom_value=True),
             "status": gr.Dropdown(STATUSES, value="", label="Status"),
             "protocol": gr.Dropdown([""] + list(core.protocols), value="", label="Protocol"),
             "since": gr.Textbox(label="From (YYYY-MM-DD)"),
             "until": gr.Textbox(label="To (YYYY-MM-DD)"),
             "refresh": gr.Button("Show sessions", elem_id="review-refresh")}
    c["sessions"] = gr.Dataframe(interactive=False, label="Sessions", elem_id="review-sessions")
    with gr.Row():
        c["chosen"] = gr.Dropdown([], label="Open session", elem_id="review-session", allow_custom_value=True)
        c["open"] = gr.Button("Open", elem_id="review-open")
    c["text"] = gr.Markdown("", elem_id="review-text")
    c["steps"] = gr.Dataframe(interactive=False, label="Steps", max_height=STEPS_TABLE_PX, elem_id="review-steps")
    with gr.Row():
        c["plot"] = gr.Plot(label="Eyelids over the session (replay)")
        c["fatigue"] = gr.Plot(label="Fatigability")
    c["video"] = gr.Video(label="Kept video (only when the person opted in)", interactive=False)
    return c


def _notes_and_exports_block() -> dict:
    c = {"notes": gr.Markdown("", elem_id="review-notes")}
    with gr.Row():
        c["note_author"] = gr.Textbox(label="Your name or initials", scale=1)
        c["note_text"] = gr.Textbox(label="Clinician note", lines=2, scale=3, elem_id="note-text")
        c["note_save"] = gr.Button("Save note", elem_id="note-save")
    with gr.Row():
        c["exports"] = {f: gr.Button(f"Export {f.upper()}", elem_id="review-pdf" if f == "pdf" else None)
                        for f in EXPORT_FORMATS}
    c["links"] = gr.HTML("", elem_id="review-links")
    return c


def _trend_block(core: AppCore) -> dict:
    gr.Markdown("### Trend")
    with gr.Row():
        c = {"trend_person": gr.Dropdown(core.people(), label="Person", allow_custom_value=True,
                                         elem_id="trend-person"),
             "trend_measure": gr.Dropdown([(m.label, k) for k, m in TREND_MEASURES.items()],
                                          value="eye_aperture_left_mm", label="Measure"),
             "trend_show": gr.Button("Show trend", elem_id="trend-show")}
    c["trend_plot"] = gr.Plot(label="Trend")
    c["trend_text"] = gr.Markdown("", elem_id="trend-text")
    return c


def build(core: AppCore) -> ReviewTab:
    with gr.Tab("Review", id="review"):
        tab = ReviewTab(**_sessions_block(core), **_notes_and_exports_block(), **_trend_block(core))
    _wire(core, tab)
    return tab


def _wire(core: AppCore, tab: ReviewTab) -> None:
    def on_refresh(person, status, protocol, since, until) -> SessionsListed:
        rows = core.find_sessions(SessionFilter(person or "", status or "", protocol or "", since or "", until or ""))
        return SessionsListed(session_table(rows), gr.update(choices=[r.id for r in rows],
                                                          value=rows[0].id if rows else None))

    def on_open(sid) -> SessionOpened:
        if not sid:
            return SessionOpened("Choose a session.")
        try:
            v = core.session_view(sid)
        except FacemonitorError as e:
            return SessionOpened(f"**{e}**")
        return SessionOpened(v.markdown, v.steps, plot_session(v.series), plot_fatigue(v.row.summary), v.video,
                             notes_markdown(v.notes))

    def on_note(sid, author, text) -> NoteSaved:
        try:
            notes = core.add_note(sid, text, author)
        except FacemonitorError as e:
            return NoteSaved(f"**Note not saved: {e}**", KEEP)
        return NoteSaved(notes_markdown(notes), "")

    def on_trend(person, measure) -> TrendShown:
        if not person:
            return TrendShown(None, "Choose a person.")
        view = core.trend(person, measure)
        return TrendShown(plot_trend(view.points, measure), view.text)

    listen(tab.refresh.click, on_refresh, [tab.person, tab.status, tab.protocol, tab.since, tab.until],
           Outputs(SessionsListed, sessions=tab.sessions, chosen=tab.chosen))
    listen(tab.open.click, on_open, tab.chosen,
           Outputs(SessionOpened, text=tab.text, steps=tab.steps, plot=tab.plot, fatigue=tab.fatigue,
                   video=tab.video, notes=tab.notes))
    listen(tab.note_save.click, on_note, [tab.chosen, tab.note_author, tab.note_text],
           Outputs(NoteSaved, notes=tab.notes, note_text=tab.note_text))
    listen(tab.trend_show.click, on_trend, [tab.trend_person, tab.trend_measure],
           Outputs(TrendShown, trend_plot=tab.trend_plot, trend_text=tab.trend_text))
    wire_exports(core, tab.exports, tab.chosen, tab.links)
