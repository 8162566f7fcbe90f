"""Results and review without a UI: per-step tables and trends from summaries (pure), plots, the text
the command line prints, and the CSV/JSON/PDF writers; one landmark overlay drawer.

May import: everything below monitor.session, and monitor.session's types.
"""
