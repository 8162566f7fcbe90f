"""Results and review: per-step tables, trends with a deterioration flag, plots and exports.

Pure tables from a session's summary and step records; plots (matplotlib, no display) from its
series; exports (CSV, JSON, PDF) written atomically into the store's ``exports/`` folder, the only
files the app serves. Every figure has its unit; docs/app.md defines each one.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import steps as S
from .expression import STEP_UNITS
from .store import SessionRow, Store

DISCLAIMER = "facemonitor is a measurement and research tool, not a diagnostic device."


@dataclass(frozen=True)
class TrendMeasure:
    column: str  # a key of the summary's neutral medians, or a derived key below
    label: str
    unit: str
    worse: int  # -1: lower is worse, +1: higher is worse
    min_change: float  # a change this large in the worse direction raises the flag


# the tool's own thresholds, each ≥ 4× the measured still-face jitter (docs/validation.md); not clinical cut-offs
TREND_MEASURES = {m.column: m for m in (
    TrendMeasure("eye_aperture_left_mm", "Eye opening, left", "mm", -1, 1.0),
    TrendMeasure("eye_aperture_right_mm", "Eye opening, right", "mm", -1, 1.0),
    TrendMeasure("mrd1_left_mm", "MRD1, left", "mm", -1, 1.0),
    TrendMeasure("mrd1_right_mm", "MRD1, right", "mm", -1, 1.0),
    TrendMeasure("brow_height_left_mm", "Brow height, left", "mm", -1, 2.0),
    TrendMeasure("brow_height_right_mm", "Brow height, right", "mm", -1, 2.0),
    TrendMeasure("mouth_asymmetry_mm", "Mouth-corner height |L−R|", "mm", +1, 1.5),
    TrendMeasure("fatigue_drop_mm", "Lid drop over sustained gaze (larger eye)", "mm", +1, 1.0),
)}


def _f(v) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def step_strength(expression: dict, step: str) -> float | None:
    """Expression strength of a step, 0–1: its emotion's p95 intensity for the six emotion steps,
    else the mean p95 of the action units the step asks for; None for neutral."""
    if not expression or not expression.get("frames"):
        return None
    if step in S.EMOTIONS:
        return _f(expression["emotions_p95"][step]["both"])
    units = STEP_UNITS.get(step) or ()
    vals = []
    for u in units:
        au = expression.get("action_units_p95", {}).get(u, {})
        vals += [v for k, v in au.items() if k in ("left", "right", "both") and v is not None]
    return round(float(np.mean(vals)), 3) if vals else None


def step_table(summary: dict | None, step_records: list[dict]) -> list[dict]:
    """One row per protocol step: how it went and its medians (mm) and expression strength (0–1)."""
    summary = summary or {}
    per_step = summary.get("steps", {})
    rows = []
    for rec in step_records:
        name = rec["step"]
        entry = per_step.get(name, {})
        row = {"step": name, "status": rec["status"], "counted_s": rec["counted_s"], "attempts": rec["attempts"],
               "quality_lost_s": rec["quality_lost_s"], "frames": entry.get("frames", 0),
               "expression_strength": step_strength(entry.get("expression", {}), name)}
        for c in ("eye_aperture", "mrd1"):
            for s in ("left", "right"):
                row[f"{c}_{s}_mm"] = _f((entry.get("medians") or {}).get(f"{c}_{s}_mm"))
        fat = entry.get("fatigue")
        if fat:
            drops = [_f(fat[s]["eye_aperture"].get("drop_mm")) for s in ("left", "right")]
            row["fatigue_drop_left_mm"], row["fatigue_drop_right_mm"] = drops
        rows.append(row)
    return rows


def session_values(summary: dict | None) -> dict[str, float]:
    """The trend measures of one session: neutral medians, mouth |L−R|, the sustained-gaze lid drop."""
    summary = summary or {}
    out = {}
    med = summary.get("neutral_medians") or {}
    for c in TREND_MEASURES:
        if c in med and _f(med[c]) is not None:
            out[c] = round(float(med[c]), 3)
    left, right = _f(med.get("commissure_height_left_mm")), _f(med.get("commissure_height_right_mm"))
    if left is not None and right is not None:
        out["mouth_asymmetry_mm"] = round(abs(left - right), 3)
    drops = []
    for name in S.SUSTAINED_GAZE:
        fat = summary.get("steps", {}).get(name, {}).get("fatigue")
        if fat:
            drops += [v for v in (_f(fat[s]["eye_aperture"].get("drop_mm")) for s in ("left", "right")) if v is not None]
    if drops:
        out["fatigue_drop_mm"] = round(max(drops), 3)
    return out


@dataclass(frozen=True)
class TrendPoint:
    session_id: str
    created_at: str
    value: float
    change: float | None  # value − baseline, in the measure's unit
    flagged: bool


def trend(sessions: list[SessionRow], column: str, baseline_session: str | None = None) -> list[TrendPoint]:
    """A measure over a person's sessions (oldest first) against their baseline: the given baseline
    session, else the first session that has the measure. A point is flagged when it is worse than
    the baseline by at least the measure's min_change."""
    m = TREND_MEASURES[column]
    values = [(r, session_values(r.summary).get(column)) for r in sessions]
    values = [(r, v) for r, v in values if v is not None]
    base = next((v for r, v in values if r.id == baseline_session), None)
    if base is None and values:
        base = values[0][1]
    out = []
    for r, v in values:
        change = None if base is None else round(v - base, 3)
        out.append(TrendPoint(r.id, r.created_at, v, change,
                              change is not None and m.worse * change >= m.min_change))
    return out


# -- plots ----------------------------------------------------------------------------------------------

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
    for col, style, label in (("eye_aperture_left_mm", "-", "eye opening, left"),
                              ("eye_aperture_right_mm", "-", "eye opening, right"),
                              ("mrd1_left_mm", ":", "MRD1, left"), ("mrd1_right_mm", ":", "MRD1, right")):
        y = np.asarray(table.column(col).to_numpy(zero_copy_only=False), float)
        ax.plot(t, y, style, lw=1.2, label=label)
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


def plot_fatigue(summary: dict | None) -> object:
    """Eye opening over each sustained-gaze step (0.5 s bins, mm) — the fatigability curves."""
    fig, ax = _figure()
    drawn = False
    for name in S.SUSTAINED_GAZE:
        fat = ((summary or {}).get("steps", {}).get(name) or {}).get("fatigue")
        if not fat:
            continue
        for s in ("left", "right"):
            bins = fat[s]["eye_aperture"].get("bins") or {}
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


# -- exports --------------------------------------------------------------------------------------------

def _atomic_write(dest: Path, data: bytes) -> Path:
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


def session_document(store: Store, row: SessionRow) -> dict:
    steps = store.steps(row.id)
    return {"session": row.as_dict(), "steps": steps, "notes": store.notes(row.id),
            "events": store.events(row.id), "step_table": step_table(row.summary, steps),
            "trend_values": session_values(row.summary), "disclaimer": DISCLAIMER}


def export_session(store: Store, session_id: str, fmt: str) -> Path:
    """Write a session export into the store's exports folder: csv (the per-frame series without
    landmarks), json (session, steps, notes, events, summary) or pdf (a readable report)."""
    from .cli import export_series

    row = store.get_session(session_id)
    dest = store.exports_dir / f"{row.id}.{fmt}"
    if fmt == "csv":
        export_series(store.read_series(row.id), dest, "csv", False, meta=row.as_dict())
        return dest
    if fmt == "json":
        return _atomic_write(dest, json.dumps(session_document(store, row), indent=1, default=str).encode())
    if fmt == "pdf":
        return _atomic_write(dest, pdf_report(store, row))
    raise ValueError(f"unknown export format {fmt!r} (csv, json, pdf)")


def _cell(v, digits=1) -> str:
    return "-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def _latin(text: str) -> str:
    """The PDF's built-in font covers Latin-1 only: typographic signs become their plain forms."""
    for a, b in (("−", "-"), ("–", "-"), ("—", "-"), ("≥", ">="), ("≤", "<="), ("×", "x"), ("’", "'")):
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


def pdf_report(store: Store, row: SessionRow) -> bytes:
    from fpdf import FPDF

    doc = session_document(store, row)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, 15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 9, "facemonitor session report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, _latin(f"Session {row.id} | person {row.person or '-'} | protocol {row.protocol or '-'} "
                         f"({row.protocol_status or '-'}) | recorded {row.created_at[:19]} UTC | {row.frames} frames, "
                         f"{row.frames_with_face} with a face"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(0, 5, DISCLAIMER + " Definitions of every figure: docs/app.md and docs/measures.md.",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    table = doc["step_table"]
    if table:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(0, 7, "Steps (medians; eye opening and MRD1 in mm, expression strength 0-1)", new_x="LMARGIN",
                 new_y="NEXT")
        pdf.set_font("Helvetica", "", 8)
        with pdf.table(col_widths=(34, 16, 14, 12, 16, 16, 16, 16, 20)) as t:
            t.row(["step", "status", "counted s", "tries", "open L", "open R", "MRD1 L", "MRD1 R", "expression"])
            for r in table:
                t.row([r["step"].replace("_", " "), r["status"], _cell(r["counted_s"]), str(r["attempts"]),
                       _cell(r["eye_aperture_left_mm"]), _cell(r["eye_aperture_right_mm"]), _cell(r["mrd1_left_mm"]),
                       _cell(r["mrd1_right_mm"]), _cell(r["expression_strength"], 2)])
    values = doc["trend_values"]
    if values:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(0, 7, "Key measures (neutral step)", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 9)
        for k, v in values.items():
            m = TREND_MEASURES[k]
            pdf.cell(0, 5, _latin(f"{m.label}: {v:.2f} {m.unit}"), new_x="LMARGIN", new_y="NEXT")
    series = store.read_series(row.id)
    for fig in (plot_session(series), plot_fatigue(row.summary)):
        pdf.ln(2)
        pdf.image(_png_stream(fig), w=180)
    if doc["notes"]:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(0, 7, "Clinician notes", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 9)
        for n in doc["notes"]:
            pdf.multi_cell(0, 5, _latin(f"{n['at'][:16]} {n['author'] or ''}: {n['text']}"), new_x="LMARGIN",
                           new_y="NEXT")
    return bytes(pdf.output())


def _png_stream(fig):
    import io

    return io.BytesIO(figure_png(fig))
