"""A person's neutral baseline, kept across sessions.

The baseline is the medians of every measure over a session's neutral window (the ``neutral`` step,
or the whole session when it has no steps), with the iris diameter used for its scale. Later
sessions of the same person are compared with it (``summary.vs_baseline``) and, when no iris
diameter is given, reuse the person's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Baseline:
    person: str
    session_id: str
    created_at: str
    medians: dict = field(default_factory=dict)  # series column → median (mm, degrees, mm²)
    iris_mm: float | None = None

    def as_dict(self) -> dict:
        return {"person": self.person, "session_id": self.session_id, "created_at": self.created_at,
                "iris_mm": self.iris_mm, "medians": self.medians}


def neutral_medians(medians: dict) -> dict[str, float]:
    """The medians a baseline keeps: a session's neutral-window medians, finite numbers only."""
    return {k: round(float(v), 4) for k, v in medians.items() if isinstance(v, (int, float)) and math.isfinite(v)}
