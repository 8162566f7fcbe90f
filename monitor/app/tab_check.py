"""The Check tab: set-up (person, protocol, camera, video opt-in, mirror), the live preview, the
step's illustration and instruction, status and quality prompt, the controls, and the live eye
curves and left − right bars; and the timer that refreshes it four times a second and, when a check
ends, fills the Results tab and switches to it.

The preview is an <img> on the MJPEG route (monitor/app/server.py), so no frame passes through
Gradio; what the timer shows is computed from the check's snapshot in monitor/app/check_view.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import gradio as gr

from monitor.app import illustration
from monitor.app.check_view import live_view
from monitor.app.core import BROWSER_FEED, AppCore
from monitor.app.live_check import CONTROLS
from monitor.app.outputs import KEEP, Outputs, listen
from monitor.app.tab_results import ResultsTab, show_results
from monitor.app.tab_review import ReviewTab
from monitor.errors import FacemonitorError

TICK_S = 0.25
SOURCES = ("default", "browser camera")
CONTROL_LABELS = {"pause": "Pause", "resume": "Resume", "repeat": "Repeat step", "skip": "Skip step", "abort": "Stop"}
CONTROL_IDS = {"abort": "stop"}  # elem_id when not the action's own name

PREVIEW_HTML = ('<div style="background:#111;border-radius:8px;min-height:240px;text-align:center">'
                '<img id="live-preview" src="/live/preview.mjpg" alt="live preview" '
                'style="max-width:100%;max-height:70vh"></div>')
CAMERA_HTML = ('<button id="fm-cam-connect" class="lg secondary" onclick="window.fmConnectCamera()">'
               'Connect this browser\'s camera</button> <span id="fm-cam-status">browser camera: not connected</span>')


@dataclass(frozen=True)
class CheckTab:
    setup: gr.Accordion
    person: gr.Dropdown
    protocol: gr.Dropdown
    source: gr.Radio
    keep_video: gr.Checkbox
    mirror: gr.Checkbox
    picture: gr.Image  # the step's illustration
    instruction: gr.Markdown
    status: gr.HTML
    quality: gr.Markdown
    start: gr.Button
    controls: dict[str, gr.Button]  # pause, resume, repeat, skip, abort → its button
    message: gr.Markdown
    curve: gr.LinePlot
    bars: gr.BarPlot
    shown_step: gr.State  # the illustration_key() of the picture shown


@dataclass(frozen=True)
class Started:
    message: str
    setup: object  # gr.update(open=False) once started: the set-up folds away


@dataclass(frozen=True)
class Tick:
    """One timer tick. Fields named after the Check tab's components, then those it fills when a check ends."""

    picture: object = KEEP
    instruction: object = KEEP
    status: object = KEEP
    quality: object = KEEP
    curve: object = KEEP
    bars: object = KEEP
    shown_step: object = KEEP
    results_text: object = KEEP
    results_steps: object = KEEP
    results_fatigue: object = KEEP
    results_session: object = KEEP
    results_session_id: object = KEEP
    tabs: object = KEEP  # gr.Tabs(selected="results") when a check ends
    review_person: object = KEEP  # the person lists gain a new person when a check ends
    trend_person: object = KEEP
    person: object = KEEP


def _setup(core: AppCore) -> dict:
    with gr.Accordion("Set-up", open=True) as setup:
        with gr.Row():
            c = {"setup": setup,
                 "person": gr.Dropdown(core.people(), label="Person (a pseudonym, not a name)",
                                       allow_custom_value=True, value=None, elem_id="person"),
                 "protocol": gr.Dropdown([(p.title, n) for n, p in core.protocols.items()],
                                         value=core.default_protocol, label="Protocol", elem_id="protocol"),
                 "source": gr.Radio(list(SOURCES), value="default", label=f"Camera ({core.source_note})",
                                    elem_id="source")}
        with gr.Row():
            c["keep_video"] = gr.Checkbox(False, label="Keep the raw video of this session (off by default; "
                                                       "stored only on this computer)", elem_id="keep-video")
            c["mirror"] = gr.Checkbox(True, label="Mirror the preview", elem_id="mirror")
        gr.HTML(CAMERA_HTML)
    return c


def _live(core: AppCore) -> dict:
    with gr.Row():
        with gr.Column(scale=3):
            gr.HTML(PREVIEW_HTML)
        with gr.Column(scale=2):
            c = {"picture": gr.Image(label="What to do", interactive=False, format="png", height=260,
                                     elem_id="illustration"),
                 "instruction": gr.Markdown("Choose the protocol and press **Start**.", elem_id="instruction"),
                 "status": gr.HTML("", elem_id="status"),
                 "quality": gr.Markdown("", elem_id="quality")}
    with gr.Row():
        c["start"] = gr.Button("Start", variant="primary", elem_id="start")
        c["controls"] = {a: gr.Button(CONTROL_LABELS[a], variant="stop" if a == "abort" else "secondary",
                                      elem_id=CONTROL_IDS.get(a, a)) for a in CONTROLS}
    c["message"] = gr.Markdown("", elem_id="message")
    with gr.Row():
        c["curve"] = gr.LinePlot(x="t_s", y="mm", color="eye", title="Eye opening, last 20 s", height=220,
                                 x_title="time (s)", y_title="eye opening (mm)", elem_id="live-curve")
        c["bars"] = gr.BarPlot(x="measure", y="mm", title="Left − right now (patient's sides)", height=220,
                               y_title="left − right (mm)", elem_id="live-bars")
    return c


def build(core: AppCore) -> CheckTab:
    with gr.Tab("Check", id="check"):
        tab = CheckTab(**_setup(core), **_live(core), shown_step=gr.State(""))

    def on_start(protocol, person, source, keep_video, mirror) -> Started:
        try:
            core.start_check(protocol=protocol, person=person, keep_video=bool(keep_video), mirror=bool(mirror),
                             source=f"browser:{BROWSER_FEED}" if source == "browser camera" else None)
        except FacemonitorError as e:
            return Started(f"**Cannot start:** {e}", KEEP)
        return Started("Started. Follow the instructions on the right.", gr.update(open=False))

    listen(tab.start.click, on_start, [tab.protocol, tab.person, tab.source, tab.keep_video, tab.mirror],
           Outputs(Started, message=tab.message, setup=tab.setup))
    for action, button in tab.controls.items():
        button.click(lambda a=action: core.control(a), None, tab.message)
    return tab


def wire_timer(core: AppCore, check: CheckTab, results: ResultsTab, review: ReviewTab, tabs: gr.Tabs) -> gr.Timer:
    """The timer: the running check's view on each tick; when it ends, its results, shown."""
    timer = gr.Timer(TICK_S)

    def on_tick(shown_step, mirror, shown_result) -> Tick:
        live = core.check
        if live is None:
            return Tick()
        live.poll()
        v = live_view(live.snapshot(), len(live.request.protocol.steps), bool(mirror))
        tick = Tick(picture=illustration.draw(v.step, mirror=bool(mirror)) if v.step and v.key != shown_step else KEEP,
                    instruction=v.instruction, status=v.status, quality=v.quality, curve=v.curve, bars=v.bars,
                    shown_step=v.key)
        if not v.finished or v.session_id == shown_result:
            return tick
        r = show_results(core, v.session_id)
        people = gr.update(choices=[""] + core.people())
        return replace(tick, results_text=r.text, results_steps=r.steps, results_fatigue=r.fatigue,
                       results_session=r.session, results_session_id=v.session_id, tabs=gr.Tabs(selected="results"),
                       review_person=people, trend_person=people, person=people)

    listen(timer.tick, on_tick, [check.shown_step, check.mirror, results.session_id],
           Outputs(Tick, picture=check.picture, instruction=check.instruction, status=check.status,
                   quality=check.quality, curve=check.curve, bars=check.bars, shown_step=check.shown_step,
                   results_text=results.text, results_steps=results.steps, results_fatigue=results.fatigue,
                   results_session=results.session, results_session_id=results.session_id, tabs=tabs,
                   review_person=review.person, trend_person=review.trend_person, person=check.person),
           show_progress="hidden")
    return timer
