"""The clinician's report and the readable plots: a real session (the sample video analysed by the real
model, with step records as the app keeps them) rendered page by page, the PDF from the command line,
and the plot fixes (step labels that never overlap, axes that one spike or a flag zone cannot stretch,
zero on every difference axis, the whole steps table)."""

import re
from itertools import combinations

import numpy as np
import pyarrow as pa
import pytest
from helpers import run_cli, write_video

from monitor import DISCLAIMER
from monitor.measures.summary import SessionSummary
from monitor.protocol import steps as S
from monitor.report import axes as A
from monitor.report import plots as P
from monitor.report.clinician import KeyMeasure, Spread, palsy_from_performed
from monitor.report.tables import TrendPoint, step_table

DONE = {"neutral": (0.0, 0.6), "raising_eyebrows": (0.6, 1.0), "showing_teeth": (1.0, 1.4),
        "happiness": (1.4, 1.8), "gaze_left": (1.8, 8.0)}


@pytest.fixture(scope="module")
def report_store(tmp_path_factory, sample_video, sample_frames):
    """Two real sessions of person P01: the sample clip (their baseline), then an 8 s protocol
    session (the clip played back and forth at 12 fps) with a 6.2 s sustained gaze, 5 steps done,
    one skipped and the rest not performed, and a clinician's note."""
    from monitor.protocol.run import StepRecord
    from monitor.protocol.steps import parse_steps
    from monitor.session.options import SessionOptions
    from monitor.session.run import run_session
    from monitor.store.db import Store

    root = tmp_path_factory.mktemp("report") / "store"
    loop = sample_frames[::3] + sample_frames[::-3]
    video = write_video(root.parent / "protocol.mp4", (loop * 4)[:96], fps=12.0)
    first = run_session(SessionOptions(source=str(sample_video), store_root=root, person="P01",
                                       step_at=parse_steps("0,2.4,neutral")))
    spans = "\n".join(f"{a},{b},{name}" for name, (a, b) in DONE.items())
    second = run_session(SessionOptions(source=str(video), store_root=root, person="P01",
                                        step_at=parse_steps(spans)))
    records = [StepRecord(i, s, "done", *DONE[s], DONE[s][1] - DONE[s][0], 1) if s in DONE else
               StepRecord(i, s, "skipped" if s == S.EYES_CLOSED_FIRMLY else "not_performed")
               for i, s in enumerate(S.ALL_STEPS)]
    with Store(root) as store:
        store.save_steps(second.session_id, records)
        store.set_protocol(second.session_id, "standard", "incomplete")
        store.add_note(second.session_id, "Mild left ptosis at rest − re-check in 3 months.", "Dr B")
    return root, first.session_id, second.session_id


def _texts(fig) -> str:
    """Every piece of text on a page: the figure's, its subfigures', its axes' (tables included)."""
    from matplotlib.text import Text

    cells = [c.get_text().get_text() for ax in fig.axes for t in ax.tables for c in t.get_celld().values()]
    return "\n".join([t.get_text() for t in fig.findobj(Text)] + cells)


@pytest.mark.timeout(900)
def test_the_report_of_a_real_session_has_every_page_and_figure(report_store):
    from monitor.report.clinician import report_data
    from monitor.report.pdf import report_pages
    from monitor.store.db import Store

    root, first, sid = report_store
    with Store(root) as store:
        data = report_data(store, store.get_session(sid))
    pages = report_pages(data)
    assert len(pages) == 5
    texts = [_texts(p) for p in pages]
    assert all(DISCLAIMER in t and f"page {i} of 5" in t for i, t in enumerate(texts, 1))
    assert all("P01" in t for t in texts)
    # 1: compliance, every one of the 24 steps with its status
    assert len(data.compliance) == 24 and sum(r.status == "done" for r in data.compliance) == 5
    assert "not performed" in texts[0] and "skipped" in texts[0] and "Protocol: standard" in texts[0]
    table = pages[0].axes[0].tables[0]
    assert max(r for r, _ in table.get_celld()) == 24  # a header and 24 rows
    # 2: key measures against the baseline (the first session), with their spread; estimates marked
    assert data.baseline_session == first
    eye = next(m for m in data.measures if m.column == "eye_aperture_left_mm")
    assert eye.now.q1 <= eye.now.median <= eye.now.q3 and eye.baseline_spread is not None
    assert eye.change == pytest.approx(eye.now.median - eye.baseline, abs=1e-3)
    change_ax = next(ax for ax in pages[1].axes if ax.get_title().startswith("Change from the baseline"))
    lo, hi = change_ax.get_xlim()
    assert lo < 0 < hi and len(change_ax.get_yticklabels()) == 8
    # the sample grins (a performed smile) but never raises its brows: no brow item is built on that step
    assert "ESTIMATE" in texts[1] and "oral commissure with smile (dynamic)" in texts[1]
    assert "brow elevation (dynamic)" not in texts[1]
    assert "House–Brackmann estimate: not shown" in texts[1]  # its eye-closure steps were not performed
    # 3: the session plot and one left − right panel per measure, each with zero on its axis
    titles = [ax.get_title() for ax in pages[2].axes]
    assert "Eyelids over the session (mm)" in titles
    asym = [ax for ax in pages[2].axes if ax.get_xlabel() == "left − right (mm)"]
    assert len(asym) == 4 and all(ax.get_xlim()[0] < 0 < ax.get_xlim()[1] for ax in asym)
    assert [t.get_text() for t in asym[0].get_yticklabels()] == [s.replace("_", " ") for s in DONE]
    # 4: a fatigue panel per eye and four trends of two sessions each; the sample looks at the camera
    # through the "gaze left" stretch, so that step was not performed and has no curve to draw
    fatigue = [ax for ax in pages[3].axes if ax.get_title().endswith("eye (the patient's left)")
               or ax.get_title().endswith("eye (the patient's right)")]
    assert len(fatigue) == 2 and all(not ax.lines for ax in fatigue)
    assert data.summary.step("gaze_left").performed is False
    trends = [ax for ax in pages[3].axes if ax.get_ylabel() == "mm" and ax.get_xticklabels()]
    assert len(trends) == 4 and all(len(ax.lines[0].get_xdata()) == 2 for ax in trends)
    # 5: the clinician's note
    assert "Dr B: Mild left ptosis at rest − re-check in 3 months." in texts[4]


@pytest.mark.timeout(900)
def test_sessions_export_writes_the_pdf_and_refuses_a_bad_id(report_store, tmp_path):
    root, _, sid = report_store
    out = tmp_path / "report.pdf"
    r = run_cli("sessions", "export", sid, "--format", "pdf", "--out", out, store=root)
    assert r.returncode == 0, r.stderr
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 5
    r = run_cli("sessions", "export", "no-such-session", "--format", "pdf", store=root)
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith(("W0000", "I0000"))]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), r.stderr


def _protocol_table(durations, spike: float | None = None) -> pa.Table:
    """A series with one labelled stretch per step of the 24-step protocol, lids about 9 mm open."""
    t = np.arange(0, sum(durations), 0.1)
    step = np.empty(t.size, object)
    at = 0.0
    for name, d in zip(S.ALL_STEPS, durations):
        step[(t >= at) & (t < at + d)] = name
        at += d
    rng = np.random.default_rng(0)
    cols = {"t_s": t, "step": step.tolist()}
    for c, v in (("eye_aperture_left_mm", 9.0), ("eye_aperture_right_mm", 9.3), ("mrd1_left_mm", 3.5),
                 ("mrd1_right_mm", 3.8)):
        cols[c] = v + rng.normal(0, 0.2, t.size)
    if spike is not None:
        cols["mrd1_left_mm"][t.size // 2] = spike
    return pa.table(cols)


@pytest.mark.fast
@pytest.mark.parametrize("durations", [
    [8] * 16 + [30, 30] + [4] * 6,  # the standard protocol
    [0.5] * 16 + [30, 30] + [0.5] * 6,  # short steps beside long ones: bands narrower than a label
])
def test_step_labels_of_the_session_plot_do_not_overlap(durations):
    fig = P.plot_session(_protocol_table(durations))
    fig.canvas.draw()
    ax = fig.axes[0]
    boxes = [t.get_window_extent() for t in ax.texts]
    assert len(boxes) == 24
    assert not [(a, b) for a, b in combinations(boxes, 2) if A.boxes_overlap(a, b)]
    title = ax.title.get_window_extent()
    frame = ax.get_window_extent()
    assert all(not A.boxes_overlap(b, title) and not A.boxes_overlap(b, frame) for b in boxes)
    assert all(0 <= b.x0 and b.x1 <= fig.bbox.width for b in boxes)


@pytest.mark.fast
def test_one_mrd1_spike_does_not_stretch_the_eyelid_axis():
    fig = P.plot_session(_protocol_table([8] * 16 + [30, 30] + [4] * 6, spike=-40.0))
    lo, hi = fig.axes[0].get_ylim()
    assert 2.0 < lo < 3.2 and 9.5 < hi < 11.0  # the bulk: MRD1 ≈ 3.5, eye opening ≈ 9.3
    assert any("1 values outside the axis" in t.get_text() for t in fig.texts)


def _points(values, base=None):
    base = values[0] if base is None else base
    return [TrendPoint(f"s{i}", f"2026-0{i + 1}-01T10:00", v, round(v - base, 3), v - base <= -1.0)
            for i, v in enumerate(values)]


@pytest.mark.fast
def test_the_trend_axis_follows_the_data_with_a_minimum_span():
    ax = P.plot_trend(_points([9.0, 8.8, 9.1, 7.8]), "eye_aperture_left_mm").axes[0]
    lo, hi = ax.get_ylim()
    assert 6.5 < lo < 7.8 and 9.1 < hi < 10.5  # not down to −1 mm for the flag zone's sake
    assert [p.get_facecolor() for p in ax.patches]  # the flag zone is drawn, clipped to the axis
    ax = P.plot_trend(_points([3.50, 3.51, 3.49]), "mrd1_left_mm").axes[0]
    assert np.diff(ax.get_ylim())[0] >= 3.0  # 0.02 mm of noise is not magnified into a slope


@pytest.mark.fast
def test_difference_axes_include_zero():
    summary = SessionSummary.from_dict({"face_found": True, "steps": {
        "neutral": {"frames": 9, "medians": {f"{m}_{s}_mm": v for m in P.ASYMMETRY_MEASURES
                                             for s, v in (("left", 10.3), ("right", 10.0))}},
        "happiness": {"frames": 9, "medians": {"eye_aperture_left_mm": 9.5, "eye_aperture_right_mm": 9.4}}}})
    fig = P.plot_asymmetry(summary)
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        assert lo <= -1.0 and hi >= 1.0 and lo == -hi  # all differences positive, zero still central
    eye = fig.axes[0]
    assert [round(b.get_width(), 2) for b in eye.patches] == [0.3, 0.1]
    assert P.asymmetry_rows(summary, performed={"happiness"})["eye_aperture"] == {"happiness": 0.1}
    m = KeyMeasure("eye_aperture_left_mm", "eye opening, left", "mm", Spread(9.8, 9.7, 9.9, 30), 9.5,
                   Spread(9.5, 9.4, 9.6, 30), 0.3, 1.0, False)
    fig = P.new_figure(6, 3)
    ax = fig.add_subplot()
    P.draw_baseline_change(ax, [m])
    lo, hi = ax.get_xlim()
    assert lo <= -2.0 and hi >= 2.0


@pytest.mark.fast
def test_the_steps_table_has_every_step():
    from monitor.app.review import STEP_ROW_PX, STEPS_TABLE_PX, step_frame

    records = [{"step": s, "status": "done" if i % 3 else "not_performed", "counted_s": 8.0, "attempts": 1,
                "quality_lost_s": 0.0} for i, s in enumerate(S.ALL_STEPS)]
    frame = step_frame(step_table(None, records))
    assert list(frame["step"]) == list(S.ALL_STEPS)
    assert STEPS_TABLE_PX >= STEP_ROW_PX * (len(frame) + 1)  # the page shows them all, header included


@pytest.mark.fast
def test_palsy_estimates_use_performed_steps_only():
    palsy = {"eface_estimate": {"items": {"static:resting_brow": 100.0, "dynamic:brow_elevation": 40.0,
                                          "dynamic:full_eye_closure": 90.0, "dynamic:oral_commissure_with_smile": 80.0},
                                "not_measured": ["static: nasolabial fold"]},
             "house_brackmann_estimate": {"grade": 3, "roman": "III", "movement_mean_pct": 60.0,
                                          "eye_closure_pct": 90.0}}
    every = palsy_from_performed(palsy, {S.NEUTRAL, S.RAISING_EYEBROWS, S.EYES_CLOSED_FIRMLY, S.SHOWING_TEETH})
    assert every["dynamic"] == 70.0 and every["house_brackmann"]["roman"] == "III" and not every["withheld"]
    some = palsy_from_performed(palsy, {S.NEUTRAL, S.SHOWING_TEETH})
    assert some["withheld"] == ["dynamic:brow_elevation", "dynamic:full_eye_closure"]
    assert some["dynamic"] == 80.0 and some["total"] == 90.0 and some["house_brackmann"] is None
    assert palsy_from_performed(palsy, {S.SHOWING_TEETH}) is None  # nothing without a neutral step


@pytest.mark.fast
def test_limits_and_label_rows():
    assert A.span_limits([5.0, 5.1], 2.0) == pytest.approx((4.05, 6.05))
    lo, hi = A.span_limits([0.2, 0.3], 1.0, include=[0.0])
    assert lo <= 0.0 < 0.3 <= hi
    assert A.robust_limits(np.r_[np.full(200, 3.0) + np.linspace(0, 1, 200), -40.0], 1.0)[0] > 2.5
    assert A.place_labels([(0, 10), (5, 15), (8, 20), (30, 40)]) == [0, 1, 2, 0]


@pytest.mark.timeout(180)
def test_the_app_shows_the_whole_steps_table(tmp_path):
    import gradio as gr

    from monitor.app.core import AppConfig, AppCore
    from monitor.app.review import STEPS_TABLE_PX
    from monitor.app.ui import build_app

    demo = build_app(AppCore(AppConfig(store_root=tmp_path, source="missing.mp4")))
    tables = [b for b in demo.blocks.values() if isinstance(b, gr.Dataframe) and b.label == "Steps"]
    assert len(tables) == 2  # Results and Review
    assert all(t.max_height == STEPS_TABLE_PX for t in tables)
