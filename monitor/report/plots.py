"""Plots of a session (matplotlib, no display): eyelids over the session with its steps shaded and
labelled, the fatigability curves per eye, the left–right differences per step, and measures across
a person's sessions. Every axis has its unit; difference axes include zero; limits come from the bulk
of the data with a minimum span (monitor/report/axes.py), so one spike or a flag zone cannot stretch
an axis and noise is not magnified.

Each ``draw_*`` draws into a figure or a subfigure (the PDF report puts several on one page); each
``plot_*`` makes a figure of its own (the app)."""

from __future__ import annotations

import textwrap

import numpy as np

from monitor.measures import schema
from monitor.measures.face_model import SIDES
from monitor.measures.summary import SESSION, SessionSummary
from monitor.protocol import steps as S
from monitor.report.axes import outside, place_labels, robust_limits, span_limits
from monitor.report.clinician import KeyMeasure
from monitor.report.tables import TREND_MEASURES, TrendPoint

SESSION_MIN_SPAN_MM = 4.0  # the eyelid axis spans at least this much
FATIGUE_MIN_SPAN_MM = 3.0
ASYMMETRY_MIN_MM = 1.0  # a left − right axis runs at least from −1 to +1 mm
BASELINE_MIN_MM = 2.0  # the change-from-baseline axis runs at least from −2 to +2 mm
ASYMMETRY_MEASURES = ("eye_aperture", "mrd1", "brow_height", "commissure_height")
LABEL_ROW_PT = 9.0  # height of one row of step labels above the session plot
SIDE_COLOURS = {"left": "#1f77b4", "right": "#d62728"}


def new_figure(width=8.0, height=3.2, layout: str | None = "constrained"):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)  # a renderer to measure text with, without pyplot's global state
    return fig


def _size_in(target) -> tuple[float, float]:
    """A figure's or subfigure's size in inches."""
    dpi = target.figure.dpi
    return target.bbox.width / dpi, target.bbox.height / dpi


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _col(table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), float)


def step_bands(table) -> list[tuple[str, float, float]]:
    """(step, first t_s, last t_s) for each labelled step, in the order the session met them."""
    t = _col(table, "t_s")
    step = np.array([s or "" for s in table.column("step").to_pylist()], object)
    return [(name, float(t[step == name].min()), float(t[step == name].max()))
            for name in dict.fromkeys(step.tolist()) if name]


def _label_steps(ax, bands) -> tuple[list[str], int]:
    """Shade each step and label it above the axes: its name where that fits over its band, else its
    number; labels that would touch go up a row. Returns the key of the numbered steps and the rows."""
    fig = ax.figure
    renderer = fig.figure.canvas.get_renderer()
    texts, extents, key = [], [], []
    for i, (name, t0, t1) in enumerate(bands, 1):
        ax.axvspan(t0, t1, color=("#eef" if i % 2 else "#efe"), zorder=0, lw=0)
        x0, x1 = ax.transData.transform([(t0, 0), (t1, 0)])[:, 0]
        words = name.replace("_", " ")
        t = ax.annotate(words, ((t0 + t1) / 2, 1.0), xycoords=ax.get_xaxis_transform(), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7)
        width = t.get_window_extent(renderer).width
        if width > (x1 - x0) + 4:
            t.set_text(str(i))
            width = t.get_window_extent(renderer).width
            key.append(f"{i} {words}")
        mid = (x0 + x1) / 2
        texts.append(t)
        extents.append((mid - width / 2, mid + width / 2))
    rows = place_labels(extents)
    for t, row in zip(texts, rows):
        t.set_position((0, 2 + row * LABEL_ROW_PT))
    n = max(rows) + 1 if rows else 0
    ax.set_title(ax.get_title(), pad=6 + n * LABEL_ROW_PT, fontsize=10)
    return key, n


def draw_session(target, table, title: str = "") -> object:
    """Eye opening and MRD1 per eye over the session (mm), steps shaded and labelled above the axes,
    the y axis from the bulk of the values (frames outside it are counted under the plot)."""
    w, h = _size_in(target)
    ax = target.add_subplot()
    ax.set_title(title or "Eyelids over the session", fontsize=10)
    if table.num_rows == 0:
        _no_data(ax, "no frames")
        return ax
    t = _col(table, "t_s")
    values = []
    for col, style in (("eye_aperture_left_mm", "-"), ("eye_aperture_right_mm", "-"), ("mrd1_left_mm", ":"),
                       ("mrd1_right_mm", ":")):
        y = _col(table, col)
        values.append(y)
        side = "left" if "left" in col else "right"
        ax.plot(t, y, style, lw=1.1, color=SIDE_COLOURS[side], label=schema.label(col, with_unit=False))
    limits = robust_limits(np.concatenate(values), SESSION_MIN_SPAN_MM)
    ax.set_ylim(*limits)
    ax.set_xlim(float(np.nanmin(t)), float(np.nanmax(t)) if np.nanmax(t) > np.nanmin(t) else float(t[0]) + 1)
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("mm", fontsize=8)
    ax.tick_params(labelsize=7)
    hidden = outside(np.concatenate(values), limits)
    # fixed side margins: the label extents measured below keep their x once top and bottom are set
    target.subplots_adjust(left=0.7 / w, right=1 - 0.15 / w, top=0.7, bottom=0.3)
    key, rows = _label_steps(ax, step_bands(table))
    notes = ["solid: eye opening, dotted: MRD1; blue: left eye, red: right eye (the patient's sides)"]
    if hidden:
        notes.append(f"{hidden} values outside the axis (blinks, eyes closed, tracking spikes) are not drawn")
    width = int(w * 17)  # characters of 6.5 pt text per line
    lines = textwrap.wrap("; ".join(notes), width) + (textwrap.wrap("steps: " + " · ".join(key), width) if key else [])
    top_in = 0.35 + rows * LABEL_ROW_PT / 72
    bottom_in = 0.45 + 0.12 * len(lines)
    target.subplots_adjust(top=1 - top_in / h, bottom=bottom_in / h)
    target.text(0.5 / w, 0.06 / h, "\n".join(lines), fontsize=6.5, va="bottom", ha="left", color="#333")
    return ax


def plot_session(table, title: str = "") -> object:
    """The session plot as a figure of its own (the app's replay)."""
    fig = new_figure(8.0, 3.6, layout=None)
    draw_session(fig, table, title)
    return fig


def _fatigue_panel(ax, summary: SessionSummary | None, side: str) -> list[float]:
    """One eye's curves; returns the values drawn (empty when there is no curve)."""
    values, drawn = [], False
    curved = [n for n, st in (summary.steps if summary else {}).items() if n != SESSION and st.fatigue]
    for name, style in zip(curved, ("-o", "-s", "-^", "-v", "-D")):  # every sustained step with a curve
        curve = summary.step(name).fatigue_curve(side)
        bins = (curve or {}).get("bins") or {}
        t, y = bins.get("t_s"), bins.get("mm")
        if not (t and y):
            continue
        y = [np.nan if v is None else v for v in y]
        drop = curve.get("drop_mm")
        ax.plot(t, y, style, ms=3, lw=1, label=f"{name.replace('_', ' ')}" +
                (f" (drop {drop:.1f} mm)" if drop is not None else ""))
        if curve.get("baseline_mm") is not None:
            ax.axhline(curve["baseline_mm"], ls="--", lw=0.8, color="grey")
            values.append(curve["baseline_mm"])
        values += y
        drawn = True
    ax.set_title(f"{side.capitalize()} eye (the patient's {side})", fontsize=9)
    ax.set_xlabel("seconds into the step", fontsize=8)
    ax.tick_params(labelsize=7)
    if drawn:
        ax.legend(fontsize=7, loc="lower left")
    else:
        _no_data(ax, "no sustained step (gaze, upgaze)\nlong enough for a curve")
    return values


def draw_fatigue(target, summary: SessionSummary | None) -> list:
    """Eye opening over each sustained step (lateral gaze, the ptosis test's upgaze), one panel per eye (0.5 s bins, mm; dashed: the
    step's first 3 s)."""
    axes = target.subplots(1, 2)
    values = [v for ax, side in zip(axes, SIDES) for v in _fatigue_panel(ax, summary, side)]
    if values:  # both eyes on one scale, so they compare at a glance
        for ax in axes:
            ax.set_ylim(*span_limits(values, FATIGUE_MIN_SPAN_MM))
    axes[0].set_ylabel("eye opening (mm)", fontsize=8)
    target.suptitle("Fatigability: eye opening during sustained gaze (dashed: the step's first 3 s)", fontsize=10)
    return list(axes)


def plot_fatigue(summary: SessionSummary | None) -> object:
    fig = new_figure(8.0, 3.2)
    draw_fatigue(fig, summary)
    return fig


def asymmetry_rows(summary: SessionSummary | None, performed: set[str] | None = None) -> dict[str, dict]:
    """Left − right of each step's medians (mm) per measure: {measure: {step: difference}}, steps in
    the session's order; only ``performed`` steps when given."""
    out = {m: {} for m in ASYMMETRY_MEASURES}
    for name, step in (summary.steps if summary else {}).items():
        if performed is not None and name not in performed:
            continue
        for m in ASYMMETRY_MEASURES:
            left, right = step.medians.get(f"{m}_left_mm"), step.medians.get(f"{m}_right_mm")
            if left is not None and right is not None:
                out[m][name] = round(left - right, 3)
    return out


def draw_asymmetry(target, summary: SessionSummary | None, performed: set[str] | None = None) -> list:
    """One panel per measure: left − right (mm) for each step, zero marked, symmetric limits of at
    least ±1 mm (positive: the patient's left is larger)."""
    from matplotlib.ticker import MaxNLocator

    rows = asymmetry_rows(summary, performed)
    steps = list(dict.fromkeys(s for per in rows.values() for s in per))
    axes = target.subplots(1, len(ASYMMETRY_MEASURES), sharey=True)
    for ax, m in zip(axes, ASYMMETRY_MEASURES):
        d = rows[m]
        y = np.arange(len(steps))
        x = [d.get(s, np.nan) for s in steps]
        ax.barh(y, x, color=["#555" if s == S.NEUTRAL else "#8ab" for s in steps], height=0.7)
        ax.axvline(0, color="black", lw=0.8)
        lim = max([ASYMMETRY_MIN_MM] + [abs(v) * 1.15 for v in x if np.isfinite(v)])
        ax.set_xlim(-lim, lim)
        ax.xaxis.set_major_locator(MaxNLocator(4, symmetric=True))
        ax.set_title(schema.BY_NAME[f"{m}_left_mm"].label.split(",")[0].replace(" below the eye line", " height"),
                     fontsize=8)
        ax.set_xlabel("left − right (mm)", fontsize=7)
        ax.tick_params(labelsize=6.5)
        if not steps:
            _no_data(ax, "no steps")
    axes[0].set_yticks(np.arange(len(steps)), [s.replace("_", " ") for s in steps])
    axes[0].invert_yaxis()
    target.suptitle("Left − right per step (the patient's sides; dark bar: neutral)", fontsize=10)
    return list(axes)


def plot_asymmetry(summary: SessionSummary | None, performed: set[str] | None = None) -> object:
    fig = new_figure(8.0, 3.6)
    draw_asymmetry(fig, summary, performed)
    return fig


def draw_baseline_change(ax, measures: list[KeyMeasure]) -> None:
    """Each key measure's change from the baseline (mm): this session's median (dot) with its
    interquartile range (whiskers), the baseline session's range around zero (grey), and the tool's
    flag threshold in the worse direction (red tick). Zero is on the axis; it spans at least ±2 mm."""
    shown = [m for m in measures if m.change is not None and m.now is not None]
    ax.set_title("Change from the baseline (this session − baseline, mm)", fontsize=9)
    ax.axvline(0, color="black", lw=0.8)
    if not shown:
        _no_data(ax, "no baseline to compare with")
        ax.set_yticks([])
        return
    y = np.arange(len(shown))
    ends = [BASELINE_MIN_MM]
    for yi, m in zip(y, shown):
        if m.baseline_spread is not None:
            ax.barh(yi, m.baseline_spread.q3 - m.baseline_spread.q1, left=m.baseline_spread.q1 - m.baseline,
                    height=0.5, color="#ddd", zorder=0)
        lo, hi = m.now.q1 - m.baseline, m.now.q3 - m.baseline
        ax.plot([lo, hi], [yi, yi], color="#333", lw=1.2)
        ax.plot(m.change, yi, "o", color="red" if m.flagged else "#1f77b4", ms=5)
        ends += [abs(lo), abs(hi)]
        worse = TREND_MEASURES[m.column].worse if m.column in TREND_MEASURES else 0
        if m.threshold is not None and worse:
            ax.plot(worse * m.threshold, yi, "|", color="red", ms=10, mew=1.5)
            ends.append(m.threshold)
    lim = 1.1 * max(ends)
    ax.set_xlim(-lim, lim)
    ax.set_yticks(y, [m.label for m in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("mm (dot: median; line: interquartile range; grey: the baseline's range; red tick: flag "
                  "threshold)", fontsize=7)
    ax.tick_params(labelsize=7)


def trend_min_span(column: str) -> float:
    """A trend axis spans at least three times the measure's flag threshold."""
    return 3.0 * TREND_MEASURES[column].min_change


def draw_trend_axes(ax, points: list[TrendPoint], column: str, title: str | None = None) -> None:
    """A measure across sessions on one axes: the baseline (dashed), the flag zone beyond the tool's
    threshold (shaded, clipped to the axis), flagged sessions circled; limits from the values and the
    baseline only."""
    m = TREND_MEASURES[column]
    ax.set_title(title or f"{m.label} across sessions", fontsize=9)
    ax.set_ylabel(m.unit, fontsize=8)
    ax.tick_params(labelsize=7)
    if not points:
        _no_data(ax, "no sessions with this measure yet")
        return
    x = np.arange(len(points))
    y = [p.value for p in points]
    base = points[0].value - (points[0].change or 0.0)
    lo, hi = span_limits(y, trend_min_span(column), include=[base])
    ax.plot(x, y, "-o", lw=1.2, ms=4)
    ax.axhline(base, color="grey", ls="--", lw=1, label="baseline")
    edge = base + m.worse * m.min_change
    if m.worse < 0 and edge > lo:
        ax.axhspan(lo, edge, color="#fdd", zorder=0, label="flag zone")
    elif m.worse > 0 and edge < hi:
        ax.axhspan(edge, hi, color="#fdd", zorder=0, label="flag zone")
    for xi, p in zip(x, points):
        if p.flagged:
            ax.plot(xi, p.value, "o", color="red", ms=9, mfc="none")
    ax.set_ylim(lo, hi)
    ax.set_xlim(-0.5, len(points) - 0.5)
    days = [p.created_at[:10] for p in points]
    ticks = days if len(set(days)) == len(days) else [p.created_at[:16].replace("T", " ") for p in points]
    ax.set_xticks(x, ticks, rotation=30, fontsize=6.5, ha="right")
    ax.legend(fontsize=6.5, loc="best")


def plot_trend(points: list[TrendPoint], column: str) -> object:
    fig = new_figure(8, 2.8)
    draw_trend_axes(fig.add_subplot(), points, column)
    return fig


def figure_png(fig, dpi: int | None = None) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
