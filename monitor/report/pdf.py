"""The clinician's report as a PDF (matplotlib, one A4 figure per page, written with PdfPages).

Pages: (1) who, when, which protocol, and how each step went; (2) key measures against the person's
baseline with their spread, and the palsy estimates from performed steps; (3) the eyelids over the
session and the left − right differences per step; (4) the fatigability curves per eye and the trend
over the person's sessions; (5) clinician notes and how to read the figures. The disclaimer and the
page number are on every page. ``report_pages`` returns the figures (tests look at them before they
are saved); ``pdf_report`` writes them.
"""

from __future__ import annotations

import io
import textwrap

from monitor import DISCLAIMER
from monitor.measures import schema
from monitor.report.clinician import ReportData, report_data
from monitor.report.plots import (draw_asymmetry, draw_baseline_change, draw_fatigue, draw_session,
                                  draw_trend_axes, new_figure)
from monitor.store.db import SessionRow, Store

PAGE_W, PAGE_H = 8.27, 11.69  # A4, inches
MARGIN = 0.6
STATUS_COLOURS = {"done": "#e3f4e3", "skipped": "#fbecd0", "not_performed": "#f6dcdc", "aborted": "#f6dcdc",
                  "pending": "#eeeeee", "running": "#eeeeee"}


def _num(v, digits: int = 1, sign: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _page(data: ReportData, title: str, number: int, total: int):
    """An A4 figure with the report's heading, a page title, and the footer (disclaimer, page n of N)."""
    fig = new_figure(PAGE_W, PAGE_H, layout=None)
    row = data.row
    fig.text(MARGIN / PAGE_W, 1 - 0.45 / PAGE_H, "facemonitor — clinician report", fontsize=13, weight="bold")
    fig.text(MARGIN / PAGE_W, 1 - 0.68 / PAGE_H, f"{row.person or 'no pseudonym'} · {row.created_at[:16].replace('T', ' ')} UTC · "
             f"session {row.id}", fontsize=8.5, color="#333")
    fig.text(MARGIN / PAGE_W, 1 - 1.0 / PAGE_H, title, fontsize=11.5, weight="bold")
    fig.text(MARGIN / PAGE_W, 0.35 / PAGE_H, DISCLAIMER, fontsize=8, style="italic", color="#333")
    fig.text(1 - MARGIN / PAGE_W, 0.35 / PAGE_H, f"page {number} of {total}", fontsize=8, ha="right", color="#333")
    return fig


def _axes_at(fig, top_in: float, height_in: float):
    """Axes without frame spanning the text width, ``top_in`` inches from the top of the page."""
    ax = fig.add_axes([MARGIN / PAGE_W, 1 - (top_in + height_in) / PAGE_H, 1 - 2 * MARGIN / PAGE_W,
                       height_in / PAGE_H])
    ax.axis("off")
    return ax


def _table(fig, top_in: float, header: list[str], rows: list[list[str]], widths: list[float],
           colours: list[str] | None = None, row_in: float = 0.21, fontsize: float = 7.5) -> float:
    """A table from ``top_in`` down; returns the inches it takes. ``colours``: one per row (first column)."""
    height = row_in * (len(rows) + 1)
    ax = _axes_at(fig, top_in, height)
    t = ax.table(cellText=rows or [["–"] * len(header)], colLabels=header, colWidths=widths, loc="upper left",
                 bbox=[0, 0, sum(widths), 1], cellLoc="left")
    t.auto_set_font_size(False)
    t.set_fontsize(fontsize)
    for (r, _c), cell in t.get_celld().items():
        cell.set_edgecolor("#bbb")
        cell.set_linewidth(0.5)
        if r == 0:
            cell.set_facecolor("#e8e8e8")
            cell.set_text_props(weight="bold")
        elif colours and r - 1 < len(colours):
            cell.set_facecolor(colours[r - 1])
    return height


def _bands(fig, heights_in: list[float]) -> list:
    """Subfigures stacked under the page heading (1.2 in) and above the footer (0.6 in), with the
    given heights in inches (scaled to fill the space between)."""
    subs = fig.subfigures(len(heights_in) + 2, 1, height_ratios=[1.2, *heights_in, 0.6])
    for sub in subs:
        sub.set_facecolor("none")
    return list(subs[1:-1])


def _text(fig, top_in: float, lines: list[str], fontsize: float = 8.5, width: int = 110) -> float:
    """Wrapped lines from ``top_in`` down; returns the inches they take."""
    wrapped = [w for line in lines for w in (textwrap.wrap(line, width) or [""])]
    fig.text(MARGIN / PAGE_W, 1 - top_in / PAGE_H, "\n".join(wrapped), fontsize=fontsize, va="top",
             linespacing=1.4)
    return len(wrapped) * fontsize * 1.4 / 72 + 0.1


def page_compliance(data: ReportData, number: int, total: int):
    fig = _page(data, "Session and step compliance", number, total)
    row, s = data.row, data.summary
    done = sum(r.status == "done" for r in data.compliance)
    base = (f"baseline: session {data.baseline_session} ({data.baseline_at[:10]})" if data.baseline_session
            and data.baseline_session != row.id else "baseline: this session (the person's first)"
            if data.baseline_session else "baseline: none kept for this person")
    y = 1.3 + _text(fig, 1.3, [
        f"Pseudonym: {row.person or '–'}    Recorded: {row.created_at[:19].replace('T', ' ')} UTC    "
        f"Protocol: {row.protocol or '–'} ({row.protocol_status or 'no protocol run'})",
        f"Frames: {row.frames}, {row.frames_with_face} with a face ({_num(100 * (s.face_fraction or 0) if s else None, 0)} %)"
        f"    Status: {row.status}    {base}",
        f"Steps performed: {done} of {len(data.compliance)} recorded (status 'done'); figures on later pages use "
        "performed steps only." if any(r.status not in ("labelled", "not_performed") for r in data.compliance) else
        "No step records (a labelled recording or photo set): a labelled step counts as performed unless its "
        "compliance check found it undone (not performed)."])
    header = ["#", "step", "status", "counted (s)", "attempts", "quality lost (s)", "frames analysed"]
    rows = [[str(r.number), r.step.replace("_", " "), r.status.replace("_", " "), _num(r.counted_s),
             "–" if r.attempts is None else str(r.attempts), _num(r.quality_lost_s), str(r.frames)]
            for r in data.compliance]
    colours = [STATUS_COLOURS.get(r.status, "white") for r in data.compliance]
    _table(fig, y + 0.1, header, rows, [0.05, 0.27, 0.15, 0.13, 0.1, 0.16, 0.14], colours)
    return fig


def _measure_rows(data: ReportData) -> list[list[str]]:
    rows = []
    for m in data.measures:
        now = "–" if m.now is None else f"{m.now.median:.2f} [{m.now.q1:.2f}–{m.now.q3:.2f}]"
        bs = m.baseline_spread
        base = "–" if m.baseline is None else f"{m.baseline:.2f}" + (f" [{bs.q1:.2f}–{bs.q3:.2f}]" if bs else "")
        flag = "FLAG" if m.flagged else ("" if m.threshold is not None else "(no threshold)")
        rows.append([m.label, now, base, _num(m.change, 2, sign=True), _num(m.threshold), flag])
    return rows


def _item(key: str) -> str:
    """"dynamic:brow_elevation" → "brow elevation (dynamic)"."""
    kind, _, name = key.partition(":")
    return f"{name.replace('_', ' ')} ({kind})" if name else key.replace("_", " ")


def _palsy_lines(p: dict | None) -> list[str]:
    if not p:
        return ["Not estimated: the neutral step was not performed, or the session has no palsy estimate."]
    lines = [f"eFace-style estimate (0–100, 100 = symmetric): static {_num(p['static'])}, dynamic "
             f"{_num(p['dynamic'])}, synkinesis {_num(p['synkinesis'])}, total {_num(p['total'])}  — ESTIMATE"]
    lines += [f"    {_item(k)}: {_num(v)}" for k, v in p["items"].items()]
    hb = p.get("house_brackmann")
    lines.append(f"House–Brackmann estimate: grade {hb['roman']} (movement {_num(hb['movement_mean_pct'])} % of the "
                 f"stronger side, eye closure {_num(hb['eye_closure_pct'])} %)  — ESTIMATE" if hb else
                 "House–Brackmann estimate: not shown (needs performed brow, smile and eye-closure steps).")
    if p["withheld"]:
        lines.append("Not shown, their steps were not performed: " + ", ".join(_item(k) for k in p["withheld"]) + ".")
    lines.append("Not measurable from landmarks: " + ", ".join(p["not_measured"]) + ".")
    return lines


def page_measures(data: ReportData, number: int, total: int):
    fig = _page(data, "Key measures against the person's baseline", number, total)
    window = "the neutral step" if data.rest_window else "the whole session (no neutral step labelled)"
    y = 1.3 + _text(fig, 1.3, [
        f"Median [interquartile range] over the frames of {window}, in mm; the baseline is the person's kept "
        "neutral medians (its range from the baseline session's frames). Change = this session − baseline. "
        "FLAG: worse than the baseline by at least the tool's threshold (a tracking threshold, ≥ 4× the "
        "still-face jitter; not a clinical cut-off)."])
    y += _table(fig, y, ["measure", "this session", "baseline", "change", "threshold", "flag"], _measure_rows(data),
                [0.3, 0.2, 0.2, 0.1, 0.1, 0.1]) + 0.35
    ax = fig.add_axes([2.6 / PAGE_W, 1 - (y + 2.6) / PAGE_H, 1 - 3.0 / PAGE_W, 2.3 / PAGE_H])
    draw_baseline_change(ax, data.measures)
    y += 3.3
    fig.text(MARGIN / PAGE_W, 1 - y / PAGE_H, "Palsy grade estimates (performed steps only)", fontsize=10,
             weight="bold", va="top")
    _text(fig, y + 0.3, _palsy_lines(data.palsy), fontsize=8)
    return fig


def page_session(data: ReportData, number: int, total: int):
    fig = _page(data, "The session, and left − right per step", number, total)
    top, sub = _bands(fig, [5.0, 4.9])
    draw_session(top, data.series, "Eyelids over the session (mm)")
    draw_asymmetry(sub, data.summary, data.performed)
    sub.subplots_adjust(left=1.5 / PAGE_W, right=1 - 0.3 / PAGE_W, top=0.88, bottom=0.12, wspace=0.3)
    return fig


def page_fatigue_trend(data: ReportData, number: int, total: int):
    fig = _page(data, "Fatigability, and the trend over the person's sessions", number, total)
    sub, below = _bands(fig, [4.0, 5.9])
    draw_fatigue(sub, data.summary)
    sub.subplots_adjust(left=0.9 / PAGE_W, right=1 - 0.3 / PAGE_W, top=0.84, bottom=0.16, wspace=0.2)
    sub = below
    axes = sub.subplots(2, 2)
    for ax, (column, points) in zip(axes.ravel(), data.trends.items()):
        draw_trend_axes(ax, points, column, title=schema.label(column))
    sub.suptitle("Across sessions (dashed: baseline; shaded: beyond the flag threshold; circled: flagged)",
                 fontsize=10)
    sub.subplots_adjust(left=0.9 / PAGE_W, right=1 - 0.3 / PAGE_W, top=0.9, bottom=0.12, wspace=0.25, hspace=0.55)
    return fig


def page_notes(data: ReportData, number: int, total: int):
    fig = _page(data, "Clinician notes", number, total)
    notes = [f"{n['at'][:16].replace('T', ' ')}  {n['author'] or '–'}: {n['text']}" for n in data.notes] \
        or ["No notes were saved for this session."]
    y = 1.3 + _text(fig, 1.3, notes, fontsize=9, width=100) + 0.3
    fig.text(MARGIN / PAGE_W, 1 - y / PAGE_H, "Reading this report", fontsize=10, weight="bold", va="top")
    _text(fig, y + 0.3, [
        "Sides are the patient's own (left = the patient's left). Distances are in mm, scaled from the iris "
        "(11.7 mm unless set for the person).",
        "Eye opening: palpebral fissure height at the pupil. MRD1: upper lid margin above the iris centre. "
        "Mouth corner: how far the corner lies below the line through the inner eye corners (larger = lower).",
        "Fatigability: eye opening in half-second bins during each sustained-gaze step; drop = first 3 s − last "
        "3 s.",
        "eFace and House–Brackmann figures are estimates computed from landmarks, shown only for performed "
        "steps; they are not a clinician's grade.",
        "Definitions of every figure: docs/measures.md and docs/app.md.",
        DISCLAIMER], fontsize=8)
    return fig


PAGES = (page_compliance, page_measures, page_session, page_fatigue_trend, page_notes)


def report_pages(data: ReportData) -> list:
    """The report's pages as matplotlib figures, in order."""
    return [page(data, i, len(PAGES)) for i, page in enumerate(PAGES, 1)]


def pdf_report(store: Store, row: SessionRow) -> bytes:
    """The clinician's report of a session as PDF bytes."""
    from matplotlib.backends.backend_pdf import PdfPages

    buf = io.BytesIO()
    with PdfPages(buf, metadata={"Title": f"facemonitor clinician report, session {row.id}",
                                 "Subject": DISCLAIMER, "Creator": "facemonitor"}) as pdf:
        for fig in report_pages(report_data(store, row)):
            pdf.savefig(fig)
    return buf.getvalue()
