"""Plots of a session (matplotlib, no display): eyelids over the session with its steps shaded, the
fatigability curves, and a measure's trend across sessions. Every axis has its unit."""

from __future__ import annotations

import numpy as np

from monitor.measures import schema
from monitor.measures.face_model import SIDES
from monitor.measures.summary import SessionSummary
from monitor.protocol import steps as S
from monitor.report.tables import TREND_MEASURES, TrendPoint


def _figure(width=8.0, height=3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100, layout="constrained")
    return fig, ax


def plot_session(table, title: str = "") -> object:
    """Eye opening and MRD1 per eye over the session (mm), with the protocol steps shaded."""
    fig, ax = _figure()
    if table.num_rows == 0:
        ax.text(0.5, 0.5, "no frames", ha="center", va="center", transform=ax.transAxes)
        return fig
    t = np.asarray(table.column("t_s").to_numpy(zero_copy_only=False), float)
    for col, style in (("eye_aperture_left_mm", "-"), ("eye_aperture_right_mm", "-"), ("mrd1_left_mm", ":"),
                       ("mrd1_right_mm", ":")):
        y = np.asarray(table.column(col).to_numpy(zero_copy_only=False), float)
        ax.plot(t, y, style, lw=1.2, label=schema.label(col, with_unit=False))
    step = np.array([s or "" for s in table.column("step").to_pylist()], object)
    names = [s for s in dict.fromkeys(step.tolist()) if s]
    for i, name in enumerate(names):
        ts = t[step == name]
        ax.axvspan(ts.min(), ts.max(), color=("#eef" if i % 2 else "#efe"), zorder=0)
        ax.text((ts.min() + ts.max()) / 2, 1.0, name.replace("_", " "), rotation=90, fontsize=7, ha="center",
                va="top", transform=ax.get_xaxis_transform())
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mm")
    ax.set_title(title or "Eyelids over the session")
    ax.legend(fontsize=7, loc="lower left", ncols=4)
    return fig


def plot_fatigue(summary: SessionSummary | None) -> object:
    """Eye opening over each sustained-gaze step (0.5 s bins, mm) — the fatigability curves."""
    fig, ax = _figure()
    drawn = False
    for name in S.SUSTAINED_GAZE:
        step = summary.step(name) if summary else None
        if step is None or not step.fatigue:
            continue
        for s in SIDES:
            bins = (step.fatigue_curve(s) or {}).get("bins") or {}
            t, y = bins.get("t_s"), bins.get("mm")
            if t and y:
                ax.plot(t, [np.nan if v is None else v for v in y], marker=".", lw=1,
                        label=f"{name.replace('_', ' ')}: {s} eye")
                drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no sustained-gaze step long enough for a curve", ha="center", va="center",
                transform=ax.transAxes)
    else:
        ax.legend(fontsize=7)
    ax.set_xlabel("seconds into the step")
    ax.set_ylabel("eye opening (mm)")
    ax.set_title("Fatigability: eye opening during sustained gaze")
    return fig


def plot_trend(points: list[TrendPoint], column: str) -> object:
    m = TREND_MEASURES[column]
    fig, ax = _figure(8, 2.8)
    if not points:
        ax.text(0.5, 0.5, "no sessions with this measure yet", ha="center", va="center", transform=ax.transAxes)
        return fig
    x = np.arange(len(points))
    y = [p.value for p in points]
    ax.plot(x, y, "-o", lw=1.2)
    base = points[0].value - (points[0].change or 0.0)
    ax.axhline(base, color="grey", ls="--", lw=1, label="baseline")
    ax.axhspan(base + m.worse * m.min_change, base + m.worse * 10 * m.min_change, color="#fdd", zorder=0,
               label="flag zone")
    for xi, p in zip(x, points):
        if p.flagged:
            ax.plot(xi, p.value, "o", color="red", ms=9, mfc="none")
    ax.set_xticks(x, [p.created_at[:10] for p in points], rotation=30, fontsize=7)
    ax.set_ylabel(m.unit)
    ax.set_title(f"{m.label} across sessions")
    ax.legend(fontsize=7)
    return fig


def figure_png(fig) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _png_stream(fig):
    import io

    return io.BytesIO(figure_png(fig))
