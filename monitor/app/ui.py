"""The Gradio front end: a thin layer over AppCore (``build_app(core) -> gr.Blocks``).

Tabs: Check (set-up, live preview, the step's illustration and instruction, countdown, progress,
quality prompt, live eye curves and asymmetry bars, controls), Results (the finished check), Review
(logged sessions, trends, notes, exports) and About. The live preview is an <img> on the MJPEG
route (app_server.py), so no frame passes through Gradio; the UI's timer reads a snapshot four
times a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from monitor import DISCLAIMER
from monitor.app import illustration
from monitor.app.core import BROWSER_FEED, AppCore
from monitor.errors import FacemonitorError
from monitor.report.plots import plot_fatigue, plot_session, plot_trend
from monitor.report.tables import TREND_MEASURES, session_values, step_table, trend
from monitor.report.writers import export_session

TICK_S = 0.25
SOURCES = ("default", "browser camera")

# the browser camera: getUserMedia → RTCPeerConnection → POST /webrtc/offer (no STUN: loopback/LAN)
HEAD = """<script>
window.fmConnectCamera = async function () {
  const status = document.getElementById('fm-cam-status');
  const say = (t) => { if (status) status.textContent = t; };
  try {
    if (window.fmPeer) { window.fmPeer.close(); }
    const media = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
    const pc = new RTCPeerConnection({iceServers: []});
    window.fmPeer = pc;
    media.getTracks().forEach((t) => pc.addTrack(t, media));
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((done) => {
      if (pc.iceGatheringState === 'complete') return done();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
    });
    const reply = await fetch('/webrtc/offer', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({sdp: pc.localDescription.sdp, type: pc.localDescription.type})});
    if (!reply.ok) { say('browser camera: the server refused the connection'); return; }
    await pc.setRemoteDescription(await reply.json());
    pc.addEventListener('connectionstatechange', () => say('browser camera: ' + pc.connectionState));
    say('browser camera: ' + pc.connectionState);
  } catch (e) { say('browser camera: ' + e.name + ' — ' + e.message); }
};
</script>"""

PREVIEW_HTML = ('<div style="background:#111;border-radius:8px;min-height:240px;text-align:center">'
                '<img id="live-preview" src="/live/preview.mjpg" alt="live preview" '
                'style="max-width:100%;max-height:70vh"></div>')
CAMERA_HTML = ('<button id="fm-cam-connect" class="lg secondary" onclick="window.fmConnectCamera()">'
               'Connect this browser\'s camera</button> <span id="fm-cam-status">browser camera: not connected</span>')


def _fmt(v, unit="", digits=1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.{digits}f}{(' ' + unit) if unit else ''}"


def _status_html(view, snap, n_steps: int) -> str:
    step = view.step
    bar = int(round(view.progress * 100))
    if view.phase == "countdown":
        head = f"Get ready: <b>{step.title}</b> — starts in {math.ceil(view.remaining_s)} s"
    elif view.phase == "step":
        head = f"<b>{step.title}</b> — hold for {math.ceil(view.remaining_s)} s more"
        if not view.counting:
            head += " (paused until the picture is good)"
    else:
        head = {"ready": "Not started", "paused": "Paused", "done": "Finished", "aborted": "Stopped"}[view.phase]
    steps = n_steps
    idx = min(view.index + 1, steps)
    return (f'<div id="step-status" data-phase="{view.phase}" data-step="{step.step if step else ""}">'
            f'<div style="font-size:1.3em">{head}</div>'
            f'<div>Step {idx} of {steps} · {snap.fps:.0f} frames/s analysed</div>'
            f'<div style="background:#ddd;height:10px;border-radius:5px"><div style="background:#3a7;height:10px;'
            f'border-radius:5px;width:{bar}%"></div></div><div>{bar}% done</div></div>')


def _curve_frame(curve: dict) -> pd.DataFrame:
    t = curve.get("t_s", np.array([]))
    parts = []
    for key, label in (("eye_aperture_left_mm", "left eye"), ("eye_aperture_right_mm", "right eye")):
        y = curve.get(key, np.array([]))
        ok = np.isfinite(y)
        parts.append(pd.DataFrame({"t_s": t[ok], "mm": y[ok], "eye": label}))
    return pd.concat(parts, ignore_index=True)


def _bars_frame(latest: dict) -> pd.DataFrame:
    rows = []
    for key, label in (("eye_aperture", "eye opening"), ("mrd1", "MRD1"), ("brow_height", "brow"),
                       ("commissure_height", "mouth corner")):
        left, right = latest.get(f"{key}_left_mm"), latest.get(f"{key}_right_mm")
        if left is not None and right is not None and math.isfinite(left) and math.isfinite(right):
            rows.append({"measure": label, "mm": round(left - right, 2)})
    return pd.DataFrame(rows or [{"measure": "—", "mm": 0.0}])


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


def results_markdown(row, values: dict, earlier: list) -> str:
    s = row.summary or {}
    lines = [f"### Session {row.id}", f"Person **{row.person or '—'}** · protocol **{row.protocol or '—'}** "
             f"({row.protocol_status or '—'}) · {row.frames} frames, {row.frames_with_face} with a face",
             "", f"*{DISCLAIMER} Definitions of every figure are in docs/app.md.*", ""]
    if not s.get("face_found"):
        return "\n".join(lines + [s.get("message", "No face was found.")])
    lines.append("**Key measures (neutral step, median)**")
    for k, m in TREND_MEASURES.items():
        if k in values:
            lines.append(f"- {m.label}: {_fmt(values[k], m.unit, 2)}")
    asym = (s.get("asymmetry") or {}).get("static") or {}
    if asym:
        lines += ["", "**Left/right at rest** (patient's sides; weaker side named only beyond the noise)"]
        for name, a in asym.items():
            lines.append(f"- {name.replace('_', ' ')}: left {_fmt(a.get('left'))}, right {_fmt(a.get('right'))}, "
                         f"difference {_fmt(a.get('abs_diff'))} ({_fmt(a.get('diff_pct_of_stronger'))} %), "
                         f"weaker: {a.get('weaker_side')}")
    palsy = s.get("palsy") or {}
    ef = palsy.get("eface_estimate")
    if ef:
        lines += ["", f"**eFace-style estimate** (0–100, 100 = symmetric; an estimate from landmarks, not a "
                      f"clinician's grade): static {_fmt(ef.get('static'))}, dynamic {_fmt(ef.get('dynamic'))}, "
                      f"total {_fmt(ef.get('total'))}"]
    vs = s.get("vs_baseline")
    if vs:
        lines += ["", f"**Compared with this person's baseline** (session {vs.get('baseline_session')}; "
                      "this session − baseline, mm)"]
        for k, d in vs.get("difference", {}).items():
            if k in TREND_MEASURES:
                lines.append(f"- {TREND_MEASURES[k].label}: {d:+.2f} mm")
    elif s.get("baseline_saved"):
        lines += ["", "This was the person's first check: its neutral step is now their baseline."]
    lines += cnn_markdown(s.get("cnn"))
    if earlier:
        lines += ["", "**Earlier sessions of this person** (neutral medians, mm)", "",
                  "| session | eye opening L | eye opening R | MRD1 L | MRD1 R |", "|---|---|---|---|---|"]
        for r in earlier[:5]:
            v = session_values(r.summary)
            lines.append(f"| {r.created_at[:16]} | {_fmt(v.get('eye_aperture_left_mm'))} | "
                         f"{_fmt(v.get('eye_aperture_right_mm'))} | {_fmt(v.get('mrd1_left_mm'))} | "
                         f"{_fmt(v.get('mrd1_right_mm'))} |")
    return "\n".join(lines)


def step_frame(rows: list[dict]) -> pd.DataFrame:
    cols = {"step": "step", "status": "status", "counted_s": "counted (s)", "attempts": "attempts",
            "eye_aperture_left_mm": "eye opening L (mm)", "eye_aperture_right_mm": "eye opening R (mm)",
            "mrd1_left_mm": "MRD1 L (mm)", "mrd1_right_mm": "MRD1 R (mm)",
            "expression_strength": "expression strength (0–1)"}
    df = pd.DataFrame([{v: r.get(k) for k, v in cols.items()} for r in rows], columns=list(cols.values()))
    return df.round(2)


def build_app(core: AppCore):
    import gradio as gr

    with gr.Blocks(title="facemonitor", analytics_enabled=False) as demo:
        gr.Markdown(f"# facemonitor\n**{DISCLAIMER}** Everything stays on this computer.")
        last_step = gr.State("")
        with gr.Tabs(selected="check") as tabs:
            with gr.Tab("Check", id="check"):
                with gr.Accordion("Set-up", open=True) as setup:
                    with gr.Row():
                        person = gr.Dropdown(core.people(), label="Person (a pseudonym, not a name)",
                                             allow_custom_value=True, value=None, elem_id="person")
                        protocol = gr.Dropdown([(p.title, n) for n, p in core.protocols.items()],
                                               value=core.default_protocol, label="Protocol", elem_id="protocol")
                        source = gr.Radio(list(SOURCES), value="default", label=f"Camera ({core.source_note})",
                                          elem_id="source")
                    with gr.Row():
                        keep_video = gr.Checkbox(False, label="Keep the raw video of this session (off by default; "
                                                              "stored only on this computer)", elem_id="keep-video")
                        mirror = gr.Checkbox(True, label="Mirror the preview", elem_id="mirror")
                    gr.HTML(CAMERA_HTML)
                with gr.Row():
                    with gr.Column(scale=3):
                        gr.HTML(PREVIEW_HTML)
                    with gr.Column(scale=2):
                        picture = gr.Image(label="What to do", interactive=False, format="png", height=260,
                                           elem_id="illustration")
                        instruction = gr.Markdown("Choose the protocol and press **Start**.", elem_id="instruction")
                        status = gr.HTML("", elem_id="status")
                        quality = gr.Markdown("", elem_id="quality")
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="start")
                    pause = gr.Button("Pause", elem_id="pause")
                    resume = gr.Button("Resume", elem_id="resume")
                    repeat = gr.Button("Repeat step", elem_id="repeat")
                    skip = gr.Button("Skip step", elem_id="skip")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                message = gr.Markdown("", elem_id="message")
                with gr.Row():
                    curve = gr.LinePlot(x="t_s", y="mm", color="eye", title="Eye opening, last 20 s", height=220,
                                        x_title="time (s)", y_title="eye opening (mm)", elem_id="live-curve")
                    bars = gr.BarPlot(x="measure", y="mm", title="Left − right now (patient's sides)", height=220,
                                      y_title="left − right (mm)", elem_id="live-bars")
            with gr.Tab("Results", id="results"):
                results_md = gr.Markdown("No finished check yet.", elem_id="results-text")
                results_steps = gr.Dataframe(label="Steps", interactive=False, elem_id="results-steps")
                with gr.Row():
                    results_fatigue = gr.Plot(label="Fatigability")
                    results_session = gr.Plot(label="Eyelids over the session")
                results_session_id = gr.State(None)
                with gr.Row():
                    r_csv = gr.Button("Export CSV")
                    r_json = gr.Button("Export JSON")
                    r_pdf = gr.Button("Export PDF")
                r_links = gr.HTML("", elem_id="results-links")
            with gr.Tab("Review", id="review"):
                with gr.Row():
                    f_person = gr.Dropdown([""] + core.people(), value="", label="Person", allow_custom_value=True)
                    f_status = gr.Dropdown(["", "complete", "incomplete", "running", "failed"], value="", label="Status")
                    f_protocol = gr.Dropdown([""] + list(core.protocols), value="", label="Protocol")
                    f_since = gr.Textbox(label="From (YYYY-MM-DD)")
                    f_until = gr.Textbox(label="To (YYYY-MM-DD)")
                    refresh = gr.Button("Show sessions", elem_id="review-refresh")
                sessions = gr.Dataframe(interactive=False, label="Sessions", elem_id="review-sessions")
                with gr.Row():
                    chosen = gr.Dropdown([], label="Open session", elem_id="review-session", allow_custom_value=True)
                    open_btn = gr.Button("Open", elem_id="review-open")
                review_md = gr.Markdown("", elem_id="review-text")
                review_steps = gr.Dataframe(interactive=False, label="Steps")
                with gr.Row():
                    review_plot = gr.Plot(label="Eyelids over the session (replay)")
                    review_fatigue = gr.Plot(label="Fatigability")
                review_video = gr.Video(label="Kept video (only when the person opted in)", interactive=False)
                notes_md = gr.Markdown("", elem_id="review-notes")
                with gr.Row():
                    note_author = gr.Textbox(label="Your name or initials", scale=1)
                    note_text = gr.Textbox(label="Clinician note", lines=2, scale=3, elem_id="note-text")
                    note_btn = gr.Button("Save note", elem_id="note-save")
                with gr.Row():
                    v_csv = gr.Button("Export CSV")
                    v_json = gr.Button("Export JSON")
                    v_pdf = gr.Button("Export PDF", elem_id="review-pdf")
                v_links = gr.HTML("", elem_id="review-links")
                gr.Markdown("### Trend")
                with gr.Row():
                    t_person = gr.Dropdown(core.people(), label="Person", allow_custom_value=True, elem_id="trend-person")
                    t_measure = gr.Dropdown([(m.label, k) for k, m in TREND_MEASURES.items()],
                                            value="eye_aperture_left_mm", label="Measure")
                    t_btn = gr.Button("Show trend", elem_id="trend-show")
                trend_plot = gr.Plot(label="Trend")
                trend_md = gr.Markdown("", elem_id="trend-text")
            with gr.Tab("About", id="about"):
                gr.Markdown(ABOUT)
        timer = gr.Timer(TICK_S)

        # -- check ---------------------------------------------------------------------------------
        def on_start(proto, who, src, keep, mir):
            try:
                core.start_check(protocol=proto, person=who, keep_video=bool(keep), mirror=bool(mir),
                                 source=f"browser:{BROWSER_FEED}" if src == "browser camera" else None)
            except FacemonitorError as e:
                return f"**Cannot start:** {e}", gr.update()
            return "Started. Follow the instructions on the right.", gr.update(open=False)

        start.click(on_start, [protocol, person, source, keep_video, mirror], [message, setup])
        for button, action in ((pause, "pause"), (resume, "resume"), (repeat, "repeat"), (skip, "skip"),
                               (stop, "abort")):
            button.click(lambda a=action: _control(core, a), None, message)

        def on_tick(shown_step, mir, shown_result):
            check = core.check
            if check is None:
                return (gr.skip(),) * 10 + (shown_step,) + (gr.skip(),) * 5
            check.poll()
            snap = check.snapshot()
            view = snap.view
            step = view.step
            key = f"{step.step if step else view.phase}:{bool(mir)}"
            pic = illustration.draw(step.step, mirror=bool(mir)) if (step and key != shown_step) else gr.skip()
            text = f"### {step.title}\n{step.instruction}" if step else f"### {view.message}"
            prompt = "" if view.phase not in ("countdown", "step") else (
                snap.quality.prompt if snap.quality.ok else f"**Check the picture: {snap.quality.prompt}**")
            if snap.error:
                prompt = f"**The check stopped: {snap.error}**"
            finished = not snap.running and snap.session_id and snap.session_id != shown_result
            results = _results(core, snap.session_id) if finished else (gr.skip(),) * 4
            return (pic, text, _status_html(view, snap, len(check.request.protocol.steps)), prompt, _curve_frame(snap.curve), _bars_frame(snap.latest),
                    *results, key, snap.session_id if finished else gr.skip(),
                    gr.Tabs(selected="results") if finished else gr.skip(),
                    *( (gr.update(choices=[""] + core.people()),) * 3 if finished else (gr.skip(),) * 3))

        timer.tick(on_tick, [last_step, mirror, results_session_id],
                   [picture, instruction, status, quality, curve, bars, results_md, results_steps, results_fatigue,
                    results_session, last_step, results_session_id, tabs, f_person, t_person, person],
                   show_progress="hidden")

        # -- results and review exports ----------------------------------------------------------------
        for button, fmt in ((r_csv, "csv"), (r_json, "json"), (r_pdf, "pdf")):
            button.click(lambda sid, f=fmt: _export(core, sid, f), results_session_id, r_links)
        for button, fmt in ((v_csv, "csv"), (v_json, "json"), (v_pdf, "pdf")):
            button.click(lambda sid, f=fmt: _export(core, sid, f), chosen, v_links)

        def on_refresh(who, st, proto, since, until):
            with core.store() as store:
                rows = store.list_sessions(st or None, 500, person=who or None, protocol=proto or None,
                                           since=(since or "").strip() or None, until=(until or "").strip() or None)
            df = pd.DataFrame([{"session": r.id, "recorded (UTC)": r.created_at[:19], "person": r.person or "",
                                "protocol": r.protocol or "", "protocol status": r.protocol_status or "",
                                "status": r.status, "frames": r.frames, "video kept": "yes" if r.video_path else ""}
                               for r in rows])
            return df, gr.update(choices=[r.id for r in rows], value=rows[0].id if rows else None)

        refresh.click(on_refresh, [f_person, f_status, f_protocol, f_since, f_until], [sessions, chosen])

        def on_open(sid):
            if not sid:
                return "Choose a session.", None, None, None, None, ""
            try:
                v = _session_view(core, sid)
            except FacemonitorError as e:
                return f"**{e}**", None, None, None, None, ""
            row = v.row
            video = row.video_path if row.video_path and Path(row.video_path).is_file() else None
            return (v.markdown, v.steps, plot_session(v.series), plot_fatigue(row.summary), video, _notes_md(v.notes))

        open_btn.click(on_open, chosen, [review_md, review_steps, review_plot, review_fatigue, review_video, notes_md])

        def on_note(sid, author, text):
            try:
                with core.store() as store:
                    store.add_note(sid or "", text, author)
                    notes = store.notes(store.get_session(sid).id)
            except FacemonitorError as e:
                return f"**Note not saved: {e}**", gr.update()
            return _notes_md(notes), ""

        note_btn.click(on_note, [chosen, note_author, note_text], [notes_md, note_text])

        def on_trend(who, measure):
            if not who:
                return None, "Choose a person."
            with core.store() as store:
                rows = store.list_sessions(person=who, limit=1000, oldest_first=True)
                base = store.latest_baseline(who)
            points = trend(rows, measure, base.session_id if base else None)
            m = TREND_MEASURES[measure]
            flagged = [p for p in points if p.flagged]
            text = (f"{len(points)} session(s) with {m.label.lower()}. Flag: worse than the baseline by "
                    f"{m.min_change:g} {m.unit} or more. ")
            text += (f"**Flag: {len(flagged)} session(s) worse than the baseline**, latest {flagged[-1].created_at[:16]} "
                     f"({flagged[-1].change:+.2f} {m.unit})." if flagged else "No session is flagged.")
            return plot_trend(points, measure), text

        t_btn.click(on_trend, [t_person, t_measure], [trend_plot, trend_md])
    return demo


def _control(core: AppCore, action: str) -> str:
    if core.check is None or not core.check.running:
        return "No check is running."
    core.check.control(action)
    return {"pause": "Paused.", "resume": "Resumed.", "repeat": "Repeating the step.", "skip": "Step skipped.",
            "abort": "Stopped. The frames recorded so far are kept."}[action]


@dataclass(frozen=True)
class SessionView:
    """One logged session as the Results and Review tabs show it."""

    row: object  # store.SessionRow
    markdown: str
    steps: pd.DataFrame
    series: object  # pyarrow.Table
    notes: list


def _session_view(core: AppCore, sid: str) -> SessionView:
    with core.store() as store:
        row = store.get_session(sid)
        earlier = [r for r in store.list_sessions(person=row.person) if r.id != row.id] if row.person else []
        return SessionView(row, results_markdown(row, session_values(row.summary), earlier),
                           step_frame(step_table(row.summary, store.steps(row.id))), store.read_series(row.id),
                           store.notes(row.id))


def _results(core: AppCore, sid: str):
    v = _session_view(core, sid)
    return v.markdown, v.steps, plot_fatigue(v.row.summary), plot_session(v.series)


def _export(core: AppCore, sid: str | None, fmt: str) -> str:
    if not sid:
        return "Choose a session first."
    try:
        with core.store() as store:
            path = export_session(store, sid, fmt)
    except Exception as e:  # the page says why; the store is untouched (exports are written atomically)
        return f"<b>Export failed: {type(e).__name__}: {e}</b>"
    return f'<a href="/exports/{path.name}" download class="fm-export">{path.name}</a> (saved in {path.parent})'


def _notes_md(notes: list[dict]) -> str:
    if not notes:
        return "*No notes yet.*"
    return "**Notes**\n\n" + "\n".join(f"- {n['at'][:16]} {n['author'] or ''}: {n['text']}" for n in notes)


ABOUT = f"""
### About these numbers
**{DISCLAIMER}** It measures a recording; it does not diagnose or grade disease.

- **Eye opening** (palpebral fissure height at the pupil) and **MRD1** (upper lid margin above the pupil
  centre) in millimetres, scaled by the iris (11.7 mm unless set per person).
- **Expression strength** is a 0–1 intensity from the face model's blendshapes, not a validated score.
- **Fatigability**: the eye opening over each 30 s sustained-gaze step; the drop is the first 3 s against the last 3 s.
- **Trend flag**: a session worse than the person's own baseline by a set amount (1 mm for the eyelids);
  the tool's threshold, about 4× its measured noise, not a clinical cut-off.

Quality checks (one face, frontal, distance, light, eyes visible) must hold for a step to count.
Definitions, sources and limits: docs/app.md and docs/measures.md in the project.
"""
