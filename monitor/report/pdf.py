"""The PDF session report (fpdf2): steps table, key measures, plots and notes."""

from __future__ import annotations

from monitor import DISCLAIMER
from monitor.report.plots import _png_stream, plot_fatigue, plot_session
from monitor.report.tables import TREND_MEASURES, session_document
from monitor.store.db import SessionRow, Store


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
