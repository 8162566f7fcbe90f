"""The local session store: SQLite (WAL) for sessions, events, people, steps, notes, baselines and
clip outputs; Parquet for each session's per-frame series, written crash-safely in chunks.

May import: engines.util, calibration, monitor.errors, monitor.measures (the series columns).
"""
