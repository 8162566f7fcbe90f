"""Session exports written into files: the per-frame series as CSV or JSON, a session document as
JSON, and a PDF report (monitor.report.pdf). Every file is written atomically (engines.util), so an
export that fails half-way leaves nothing half-written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from engines.util import atomic_path, atomic_write
from monitor.measures.schema import COLUMNS, LANDMARKS_COLUMN
from monitor.report.tables import session_document
from monitor.store.db import Store


def export_series(table, out: Path, fmt: str, landmarks: bool, meta: dict) -> None:
    """Write a session's series as CSV (no landmarks) or JSON (session metadata, each column's unit and
    definition from the series schema, and the rows)."""
    import pyarrow.csv as pacsv  # lazy: only exports need the CSV writer

    if not (fmt == "json" and landmarks) and "landmarks_px" in table.column_names:
        table = table.drop_columns(["landmarks_px"])
    with atomic_path(out) as tmp:
        if fmt == "csv":
            pacsv.write_csv(table, tmp)
            return
        rows = table.to_pylist()
        for r in rows:
            for k, v in r.items():
                if isinstance(v, float) and math.isnan(v):
                    r[k] = None
        columns = {c.name: {"unit": c.unit, "description": c.description}
                   for c in (*COLUMNS, LANDMARKS_COLUMN) if c.name in table.column_names}
        with open(tmp, "w") as f:
            json.dump({"session": meta, "columns": columns, "series": rows}, f)


def export_session(store: Store, session_id: str, fmt: str) -> Path:
    """Write a session export into the store's exports folder: csv (the per-frame series without
    landmarks), json (session, steps, notes, events, summary) or pdf (a readable report)."""
    from monitor.report.pdf import pdf_report  # lazy: matplotlib only for a PDF

    row = store.get_session(session_id)
    dest = store.exports_dir / f"{row.id}.{fmt}"
    if fmt == "csv":
        export_series(store.read_series(row.id), dest, "csv", False, meta=row.as_dict())
        return dest
    if fmt == "json":
        return atomic_write(dest, json.dumps(session_document(store, row), indent=1, default=str))
    if fmt == "pdf":
        return atomic_write(dest, pdf_report(store, row))
    raise ValueError(f"unknown export format {fmt!r} (csv, json, pdf)")
