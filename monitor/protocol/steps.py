"""Names of the 24 steps of the MG video protocol and what each step's frames feed (DESIGN §1).

The protocol itself (durations, instructions, order) is data elsewhere; these names are the contract
between it, the series' ``step`` column and the per-step analyses. Gaze directions are the patient's
own (``gaze_left`` = looking toward the patient's left). A recorded protocol video is labelled with
a steps file (``analyze --steps``), read here into a StepTimeline.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import UsageError

NEUTRAL = "neutral"
EYES_CLOSED = "eyes_closed"
EYES_CLOSED_FIRMLY = "eyes_closed_firmly"
RIGHT_EYE_CLOSED = "right_eye_closed"
LEFT_EYE_CLOSED = "left_eye_closed"
EMOTIONS = ("anger", "fear", "happiness", "surprise", "disgust", "sadness")
SHOWING_TEETH = "showing_teeth"
RAISING_EYEBROWS = "raising_eyebrows"
MOUTH_OPEN = "mouth_open"
WHISTLING = "whistling"
TONGUE_PROTRUSION = "tongue_protrusion"
GAZE_DIRECTIONS = {  # unit direction in the head frame: x toward the patient's left, y up
    "gaze_left": (1, 0), "gaze_right": (-1, 0), "gaze_up": (0, 1), "gaze_down": (0, -1),
    "gaze_up_left": (1, 1), "gaze_up_right": (-1, 1), "gaze_down_left": (1, -1), "gaze_down_right": (-1, -1),
}
SUSTAINED_GAZE = ("gaze_left", "gaze_right")  # 30 s each: the fatigability steps of the study
# the ptosis fatigability test (an addition to the study's protocol): sustained upgaze until the lid
# drops or 60 s pass, eyes closed to rest, then a short upgaze again to see the lid recover
PTOSIS_UPGAZE = "ptosis_upgaze"
PTOSIS_REST = "ptosis_rest"
PTOSIS_RETEST = "ptosis_retest"
PTOSIS_STEPS = (PTOSIS_UPGAZE, PTOSIS_REST, PTOSIS_RETEST)
SUSTAINED_STEPS = SUSTAINED_GAZE + (PTOSIS_UPGAZE,)  # steps that get a fatigue curve unless a protocol says

EXPRESSION_STEPS = (NEUTRAL, EYES_CLOSED, RIGHT_EYE_CLOSED, LEFT_EYE_CLOSED, EYES_CLOSED_FIRMLY, *EMOTIONS,
                    SHOWING_TEETH, RAISING_EYEBROWS, MOUTH_OPEN, WHISTLING, TONGUE_PROTRUSION)
ALL_STEPS = EXPRESSION_STEPS + tuple(GAZE_DIRECTIONS)
assert len(ALL_STEPS) == 24
KNOWN_STEPS = ALL_STEPS + PTOSIS_STEPS  # every step name a protocol, a steps file or the series may use


@dataclass(frozen=True)
class StepSpan:
    start_s: float
    end_s: float
    step: str


class StepTimeline:
    """Which protocol step a moment of a recording belongs to: spans [start_s, end_s) of media
    time, sorted and not overlapping; "" outside them."""

    def __init__(self, spans: list[StepSpan], source: str = "steps") -> None:
        self.spans = sorted(spans, key=lambda s: s.start_s)
        for a, b in zip(self.spans, self.spans[1:]):
            if b.start_s < a.end_s:
                raise UsageError(f"{source}: steps overlap: {a.step} ({a.start_s:g}–{a.end_s:g} s) and "
                                 f"{b.step} ({b.start_s:g}–{b.end_s:g} s)")
        self._starts = [s.start_s for s in self.spans]

    def __call__(self, t_s: float) -> str:
        i = bisect.bisect_right(self._starts, t_s) - 1
        return self.spans[i].step if i >= 0 and t_s < self.spans[i].end_s else ""


def parse_steps(text: str, source: str = "steps file") -> StepTimeline:
    """A steps file: CSV lines ``start_s,end_s,step`` (a header line and # comments allowed),
    media seconds from the start of the recording, step names from KNOWN_STEPS."""
    spans = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or (n == 1 and line.replace(" ", "").lower() == "start_s,end_s,step"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            raise UsageError(f"{source} line {n}: expected start_s,end_s,step, got {line!r}")
        try:
            start, end = float(parts[0]), float(parts[1])
        except ValueError:
            raise UsageError(f"{source} line {n}: start and end must be seconds, got {parts[0]!r}, {parts[1]!r}") from None
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
            raise UsageError(f"{source} line {n}: need 0 ≤ start < end, got {start:g}, {end:g}")
        if parts[2] not in KNOWN_STEPS:
            raise UsageError(f"{source} line {n}: unknown step {parts[2]!r} (steps: {', '.join(KNOWN_STEPS)})")
        spans.append(StepSpan(start, end, parts[2]))
    if not spans:
        raise UsageError(f"{source} names no steps")
    return StepTimeline(spans, source)


def read_steps(path: Path) -> StepTimeline:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read steps file {path}: {e}") from None
    return parse_steps(text, str(path))
