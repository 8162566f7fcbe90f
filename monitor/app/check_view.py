"""What the Check tab shows of a running check, computed from its snapshot without Gradio: the
instruction, the quality prompt, the status block (phase, countdown, progress bar), the live eye
curves and the left − right bars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.app.live_check import CheckSnapshot
from monitor.protocol.run import RunView

CURVES = (("eye_aperture_left_mm", "left eye"), ("eye_aperture_right_mm", "right eye"))
BARS = (("eye_aperture", "eye opening"), ("mrd1", "MRD1"), ("brow_height", "brow"), ("commissure_height", "mouth corner"))
PHASE_HEADS = {"ready": "Not started", "paused": "Paused", "done": "Finished", "aborted": "Stopped"}


def status_html(view: RunView, fps: float, n_steps: int) -> str:
    """The status block; ``#step-status`` carries the phase and step as data attributes (the browser
    tests read them)."""
    step = view.step
    bar = int(round(view.progress * 100))
    if view.phase == "countdown":
        head = f"Get ready: <b>{step.title}</b> — starts in {math.ceil(view.remaining_s)} s"
    elif view.phase == "step":
        head = f"<b>{step.title}</b> — hold for {math.ceil(view.remaining_s)} s more"
        if not view.counting:
            head += " (paused until the picture is good)"
    else:
        head = PHASE_HEADS[view.phase]
    idx = min(view.index + 1, n_steps)
    return (f'<div id="step-status" data-phase="{view.phase}" data-step="{step.step if step else ""}">'
            f'<div style="font-size:1.3em">{head}</div>'
            f'<div>Step {idx} of {n_steps} · {fps:.0f} frames/s analysed</div>'
            f'<div style="background:#ddd;height:10px;border-radius:5px"><div style="background:#3a7;height:10px;'
            f'border-radius:5px;width:{bar}%"></div></div><div>{bar}% done</div></div>')


def curve_frame(curve: dict) -> pd.DataFrame:
    """Eye opening per eye over the last seconds (long form: t_s, mm, eye), finite points only."""
    t = curve.get("t_s", np.array([]))
    parts = []
    for key, label in CURVES:
        y = curve.get(key, np.array([]))
        ok = np.isfinite(y)
        parts.append(pd.DataFrame({"t_s": t[ok], "mm": y[ok], "eye": label}))
    return pd.concat(parts, ignore_index=True)


def bars_frame(latest: dict) -> pd.DataFrame:
    """Left − right of the newest frame for each paired measure (mm); one empty bar when there is none."""
    rows = []
    for key, label in BARS:
        left, right = latest.get(f"{key}_left_mm"), latest.get(f"{key}_right_mm")
        if left is not None and right is not None and math.isfinite(left) and math.isfinite(right):
            rows.append({"measure": label, "mm": round(left - right, 2)})
    return pd.DataFrame(rows or [{"measure": "—", "mm": 0.0}])


def instruction_markdown(view: RunView) -> str:
    step = view.step
    return f"### {step.title}\n{step.instruction}" if step else f"### {view.message}"


def quality_prompt(snap: CheckSnapshot) -> str:
    """The prompt under the instruction: the picture's quality while a step runs, or why the check stopped."""
    if snap.error:
        return f"**The check stopped: {snap.error}**"
    if snap.view.phase not in ("countdown", "step"):
        return ""
    return snap.quality.prompt if snap.quality.ok else f"**Check the picture: {snap.quality.prompt}**"


def illustration_key(view: RunView, mirror: bool) -> str:
    """What the illustration shows (the step, or the phase without one) and whether it is mirrored: the
    picture is redrawn only when this changes."""
    step = view.step
    return f"{step.step if step else view.phase}:{bool(mirror)}"


@dataclass(frozen=True)
class LiveView:
    """One timer tick's view of the running check."""

    step: str | None  # the step to illustrate (None: no step now)
    key: str  # illustration_key()
    instruction: str
    status: str
    quality: str
    curve: pd.DataFrame
    bars: pd.DataFrame
    session_id: str | None
    finished: bool  # the session's thread has ended and it has a session id


def live_view(snap: CheckSnapshot, n_steps: int, mirror: bool) -> LiveView:
    view = snap.view
    return LiveView(view.step.step if view.step else None, illustration_key(view, mirror), instruction_markdown(view),
                    status_html(view, snap.fps, n_steps), quality_prompt(snap), curve_frame(snap.curve),
                    bars_frame(snap.latest), snap.session_id, bool(not snap.running and snap.session_id))
