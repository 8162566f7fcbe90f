"""The one formatter of numbers for people (CLI, app, reports): kept free of heavy imports, so the
command line can load it at start-up."""

from __future__ import annotations

import math


def fmt(v, unit: str = "", digits: int = 1, missing: str = "—") -> str:
    """A number with its unit (``unit`` is appended as given: " mm", "%"), or ``missing`` for a value
    that is absent or not finite. The one formatter of the CLI, the app and the reports."""
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return missing
    return f"{v:.{digits}f}{unit}"
