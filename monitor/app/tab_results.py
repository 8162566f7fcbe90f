"""The Results tab: the check that just finished (its text, steps, fatigability and eyelid plots) and
its exports. The timer (monitor/app/tab_check.py) fills it, with ``show_results``, when a check ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from monitor.app.core import AppCore
from monitor.app.review import STEPS_TABLE_PX
from monitor.report.plots import plot_fatigue, plot_session

EXPORT_FORMATS = ("csv", "json", "pdf")


@dataclass(frozen=True)
class ResultsTab:
    text: gr.Markdown
    steps: gr.Dataframe
    fatigue: gr.Plot
    session: gr.Plot
    session_id: gr.State  # the session shown (None until a check finishes)
    exports: dict[str, gr.Button]  # format → its button
    links: gr.HTML


@dataclass(frozen=True)
class ResultsShown:
    """A finished session as the Results tab shows it."""

    text: str
    steps: pd.DataFrame
    fatigue: object  # matplotlib figures
    session: object


def show_results(core: AppCore, sid: str) -> ResultsShown:
    v = core.session_view(sid)
    return ResultsShown(v.markdown, v.steps, plot_fatigue(v.row.summary), plot_session(v.series))


def build(core: AppCore) -> ResultsTab:
    with gr.Tab("Results", id="results"):
        text = gr.Markdown("No finished check yet.", elem_id="results-text")
        steps = gr.Dataframe(label="Steps", interactive=False, elem_id="results-steps", max_height=STEPS_TABLE_PX)
        with gr.Row():
            fatigue = gr.Plot(label="Fatigability")
            session = gr.Plot(label="Eyelids over the session")
        session_id = gr.State(None)
        with gr.Row():
            exports = {f: gr.Button(f"Export {f.upper()}") for f in EXPORT_FORMATS}
        links = gr.HTML("", elem_id="results-links")
    tab = ResultsTab(text, steps, fatigue, session, session_id, exports, links)
    wire_exports(core, exports, tab.session_id, tab.links)
    return tab


def wire_exports(core: AppCore, buttons: dict[str, gr.Button], session: gr.components.Component,
                 links: gr.HTML) -> None:
    """Each export button writes the chosen session in its format and shows the link (one output: the link)."""
    for fmt, button in buttons.items():
        button.click(lambda sid, f=fmt: core.export(sid, f), session, links)
