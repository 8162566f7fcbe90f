"""Protocols as data: the 24-expression MG video protocol, a short variant, and custom files.

A protocol is an ordered list of steps; each step names one of the 24 step names of
``monitor.protocol.steps`` (so every analysis knows what its frames are for), says in plain language what to
do, how long to hold it, and whether it must be held unbroken (the sustained-gaze steps, whose
point is continuous effort: a break restarts them; other steps are extended until they have their
full time of good frames). ``monitor.protocol.run`` drives a protocol; this module only describes.

Custom protocols are JSON or TOML files (docs/app.md, "Custom protocols")::

    name = "morning-check"
    title = "Morning check"
    countdown_s = 3
    [[steps]]
    step = "neutral"
    duration_s = 8
    [[steps]]
    step = "gaze_left"
    duration_s = 30
    instruction = "Look at the left edge of the screen and hold."

Omitted fields take the built-in step's instruction, continuity, duration and ``sustained`` (true: the
step gets a fatigue curve, as the sustained-gaze and ptosis-upgaze steps do by default).

Each step also says what it asks for and how to see that it happened (``STEP_CHECKS``, a StepCheck per
step name): ``monitor.measures.compliance`` applies these checks, relative to the person's own neutral,
to recorded windows and to the last seconds of a live step (docs/measures.md, "Step compliance").
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from monitor.errors import UsageError
from monitor.protocol import steps as S

MIN_STEP_S, MAX_STEP_S = 1.0, 600.0
MAX_COUNTDOWN_S = 30.0
KEEP_STILL = "Keep your head still and facing the camera."
PTOSIS_MAX_S = 60.0  # the QMG ptosis item times sustained upgaze up to 60 s
PTOSIS_STOP_DROP_MM = 2.0  # the upgaze step may end early once MRD1 has dropped this much, sustained


class CheckKind(StrEnum):
    NONE = "none"  # nothing to check (the neutral step is the reference)
    BOTH_CLOSED = "both_closed"  # both fissures near zero
    ONE_CLOSED = "one_closed"  # ``side``'s fissure near zero, the other eye open
    GAZE = "gaze"  # both irises moved from their neutral place toward ``direction``
    RISE = "rise"  # at least one of ``signals`` moved clearly beyond neutral and its noise


@dataclass(frozen=True)
class Signal:
    """One thing a step moves: a series column stem with sides (``brow_height`` → brow_height_<side>_mm,
    the side that moved more counts, so a one-sided palsy still shows the effort) or a blendshape name
    (``<side>`` stands for Left/Right); ``sign`` +1 when it grows; ``min_change`` the least change over
    neutral that counts (mm, or blendshape score 0–1)."""

    name: str
    min_change: float
    sign: int = +1
    unit: str = "mm"  # "mm" for a series stem, "score" for a blendshape


@dataclass(frozen=True)
class StepCheck:
    asks: str  # what the step asks for, as in "I can't see {asks}"
    kind: CheckKind
    signals: tuple[Signal, ...] = ()
    side: str | None = None  # ONE_CLOSED: the eye that closes
    direction: tuple[float, float] = (0.0, 0.0)  # GAZE: x toward the patient's left, y up


def _rise(asks: str, *signals: Signal) -> StepCheck:
    return StepCheck(asks, CheckKind.RISE, signals)


def _score(name: str, min_change: float = 0.2) -> Signal:
    return Signal(name, min_change, +1, "score")


def _gaze_check(step: str, direction: tuple[float, float]) -> StepCheck:
    where = step.removeprefix("gaze_").replace("_", " ")
    return StepCheck(f"you looking {where}", CheckKind.GAZE, direction=direction)


_SMILE = (Signal("commissure_excursion", 1.5), _score("mouthSmile<side>"))
_BROWS = (Signal("brow_height", 1.5), _score("browInnerUp"), _score("browOuterUp<side>"))
# what each step asks for and how it is seen (docs/measures.md, "Step compliance")
STEP_CHECKS: dict[str, StepCheck] = {
    S.NEUTRAL: StepCheck("a neutral face", CheckKind.NONE),
    S.EYES_CLOSED: StepCheck("your eyes closed", CheckKind.BOTH_CLOSED),
    S.EYES_CLOSED_FIRMLY: StepCheck("your eyes squeezed shut", CheckKind.BOTH_CLOSED),
    S.RIGHT_EYE_CLOSED: StepCheck("only your right eye closed", CheckKind.ONE_CLOSED, side="right"),
    S.LEFT_EYE_CLOSED: StepCheck("only your left eye closed", CheckKind.ONE_CLOSED, side="left"),
    "anger": _rise("a frown", Signal("brow_height", 1.5, -1), _score("browDown<side>")),
    "fear": _rise("a frightened face", _score("eyeWide<side>"), _score("mouthStretch<side>"), *_BROWS),
    "happiness": _rise("a smile", *_SMILE),
    "surprise": _rise("a surprised face", _score("jawOpen"), _score("eyeWide<side>"), *_BROWS),
    "disgust": _rise("a wrinkled nose", _score("noseSneer<side>"), _score("mouthUpperUp<side>")),
    "sadness": _rise("a sad face", _score("mouthFrown<side>"), _score("browInnerUp")),
    S.SHOWING_TEETH: _rise("your teeth in a grin", *_SMILE, _score("mouthUpperUp<side>")),
    S.RAISING_EYEBROWS: _rise("your eyebrows raised", *_BROWS),
    S.MOUTH_OPEN: _rise("your mouth open", _score("jawOpen")),
    S.WHISTLING: _rise("your lips pursed", Signal("commissure_excursion", 1.5, -1), _score("mouthPucker"),
                       _score("mouthFunnel")),
    S.TONGUE_PROTRUSION: _rise("your mouth open with the tongue out", _score("jawOpen", 0.1)),
    **{g: _gaze_check(g, d) for g, d in S.GAZE_DIRECTIONS.items()},
    S.PTOSIS_UPGAZE: _gaze_check("gaze_up", (0.0, 1.0)),
    S.PTOSIS_REST: StepCheck("your eyes closed", CheckKind.BOTH_CLOSED),
    S.PTOSIS_RETEST: _gaze_check("gaze_up", (0.0, 1.0)),
}


@dataclass(frozen=True)
class ProtocolStep:
    step: str  # one of monitor.protocol.steps.ALL_STEPS: the label its frames get in the series
    title: str  # a few words for the progress list
    instruction: str  # what to do, in plain language
    duration_s: float  # seconds of good-quality frames the step needs
    continuous: bool = False  # must be held unbroken: a quality break restarts it
    sustained: bool = False  # a fatigability step: its window gets a fatigue curve
    stop_drop_mm: float | None = None  # may end early once MRD1 is this many mm below its start, sustained

    @property
    def check(self) -> StepCheck:
        """What the step asks for and how it is seen (STEP_CHECKS)."""
        return STEP_CHECKS[self.step]


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    steps: tuple[ProtocolStep, ...]
    countdown_s: float = 3.0  # "get ready" time before each step

    @property
    def sustained_steps(self) -> tuple[str, ...]:
        """The steps whose windows get a fatigue curve."""
        return tuple(s.step for s in self.steps if s.sustained)

    @property
    def total_s(self) -> float:
        """Length with no interruptions: every countdown and every step."""
        return sum(s.duration_s for s in self.steps) + self.countdown_s * len(self.steps)

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "countdown_s": self.countdown_s,
                "steps": [s.__dict__.copy() for s in self.steps]}


def _gaze(direction: str, seconds: float) -> ProtocolStep:
    where = direction.replace("_", " ")
    return ProtocolStep(f"gaze_{direction}", f"Look {where}",
                        f"Without moving your head, look {where} (your own {where}) and hold your gaze there."
                        " Keep your eyes as wide open as you comfortably can.",
                        seconds, continuous=seconds >= 10, sustained=seconds >= 10)


# the MG video protocol's 24 steps, in its order (Ruiter et al.; see docs/app.md)
STEP_LIBRARY: dict[str, ProtocolStep] = {s.step: s for s in (
    ProtocolStep(S.NEUTRAL, "Neutral face", f"Look at the camera with a relaxed, neutral face. {KEEP_STILL}", 8),
    ProtocolStep(S.EYES_CLOSED, "Close your eyes", "Close both eyes gently, as if asleep, and keep them closed.", 8),
    ProtocolStep(S.RIGHT_EYE_CLOSED, "Close your right eye",
                 "Close only your right eye (keep the left one open), and hold.", 8),
    ProtocolStep(S.LEFT_EYE_CLOSED, "Close your left eye",
                 "Close only your left eye (keep the right one open), and hold.", 8),
    ProtocolStep(S.EYES_CLOSED_FIRMLY, "Squeeze your eyes shut",
                 "Close both eyes as tightly as you can, and hold.", 8),
    ProtocolStep("anger", "Anger", "Make an angry face: frown hard and press your lips together.", 8),
    ProtocolStep("fear", "Fear", "Make a frightened face: raise your brows, open your eyes wide, stretch your mouth.", 8),
    ProtocolStep("happiness", "Happiness", "Give a big, broad smile, as if you are very happy.", 8),
    ProtocolStep("surprise", "Surprise", "Look surprised: raise your brows, open your eyes wide and drop your jaw.", 8),
    ProtocolStep("disgust", "Disgust", "Make a disgusted face: wrinkle your nose and lift your upper lip.", 8),
    ProtocolStep("sadness", "Sadness", "Make a sad face: raise the inner brows and pull the mouth corners down.", 8),
    ProtocolStep(S.SHOWING_TEETH, "Show your teeth", "Show all your teeth in a wide grin, and hold.", 8),
    ProtocolStep(S.RAISING_EYEBROWS, "Raise your eyebrows", "Raise both eyebrows as high as you can, and hold.", 8),
    ProtocolStep(S.MOUTH_OPEN, "Open your mouth", "Open your mouth wide, and hold.", 8),
    ProtocolStep(S.WHISTLING, "Whistle", "Purse your lips as if to whistle, and hold.", 8),
    ProtocolStep(S.TONGUE_PROTRUSION, "Stick out your tongue", "Stick your tongue straight out, and hold.", 8),
    _gaze("left", 30), _gaze("right", 30), _gaze("up", 4), _gaze("down", 4),
    _gaze("up_left", 4), _gaze("up_right", 4), _gaze("down_left", 4), _gaze("down_right", 4),
    # the ptosis fatigability test (not part of the study's protocol)
    ProtocolStep(S.PTOSIS_UPGAZE, "Look up and hold",
                 "Without moving your head, look up at the top edge of the screen and keep looking up, eyes wide "
                 "open, for as long as the timer runs (one minute).",
                 PTOSIS_MAX_S, continuous=True, sustained=True, stop_drop_mm=PTOSIS_STOP_DROP_MM),
    ProtocolStep(S.PTOSIS_REST, "Rest your eyes", "Close your eyes gently and rest them.", 20),
    ProtocolStep(S.PTOSIS_RETEST, "Look up again", "Look up at the top edge of the screen again, eyes wide open.", 5,
                 continuous=True),
)}
assert tuple(STEP_LIBRARY) == S.KNOWN_STEPS and set(STEP_CHECKS) == set(S.KNOWN_STEPS)
PTOSIS_TAIL = tuple(STEP_LIBRARY[s] for s in S.PTOSIS_STEPS)

MG24 = Protocol("mg24", "MG video protocol (24 expressions, about 4 minutes)",
                tuple(STEP_LIBRARY[s] for s in S.ALL_STEPS))
MG24_PTOSIS = Protocol("mg24+ptosis", "MG video protocol, then the ptosis test (about 6 minutes)",
                       MG24.steps + PTOSIS_TAIL)
PTOSIS = Protocol("ptosis", "Ptosis test (look up for up to a minute, rest, look up again; about 2 minutes)",
                  (replace(STEP_LIBRARY[S.NEUTRAL], duration_s=5), *PTOSIS_TAIL), countdown_s=3.0)
SHORT = Protocol("short", "Quick check (5 steps, about half a minute)", (
    replace(STEP_LIBRARY[S.NEUTRAL], duration_s=3),
    replace(STEP_LIBRARY[S.EYES_CLOSED], duration_s=2),
    replace(STEP_LIBRARY["happiness"], duration_s=2),
    replace(STEP_LIBRARY["gaze_left"], duration_s=7),
    replace(STEP_LIBRARY[S.RAISING_EYEBROWS], duration_s=2),
), countdown_s=1.5)
BUILTIN = {p.name: p for p in (MG24, SHORT, MG24_PTOSIS, PTOSIS)}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
_STEP_KEYS = {"step", "title", "instruction", "duration_s", "continuous", "sustained"}
_TOP_KEYS = {"name", "title", "countdown_s", "steps"}


def _number(value, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{where} must be a number of seconds, got {value!r}")
    if not lo <= value <= hi:
        raise UsageError(f"{where} must be between {lo:g} and {hi:g} s, got {value:g}")
    return float(value)


def _text(value, where: str, limit: int = 400) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where} must be non-empty text")
    if len(value) > limit:
        raise UsageError(f"{where} is longer than {limit} characters")
    return value.strip()


def _refuse_unknown(fields, allowed: set, where: str) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})")


def protocol_from_dict(data, source: str = "protocol") -> Protocol:
    """Validate a parsed protocol file. Every problem is one UsageError naming where it is."""
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a table/object with name, title and steps")
    _refuse_unknown(data, _TOP_KEYS, source)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(f"{source}: name must be 1–40 letters, digits, '-', '_' or '.', got {name!r}")
    if name in BUILTIN:
        raise UsageError(f"{source}: name {name!r} is a built-in protocol; choose another")
    title = _text(data.get("title", name), f"{source}: title", 120)
    countdown = _number(data.get("countdown_s", 3.0), f"{source}: countdown_s", 0.0, MAX_COUNTDOWN_S)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise UsageError(f"{source}: steps must be a non-empty list")
    steps, seen = [], set()
    for i, item in enumerate(raw_steps, 1):
        where = f"{source}: step {i}"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: expected a table/object with at least 'step'")
        _refuse_unknown(item, _STEP_KEYS, where)
        key = item.get("step")
        if key not in STEP_LIBRARY:
            raise UsageError(f"{where}: unknown step {key!r} (steps: {', '.join(S.KNOWN_STEPS)})")
        if key in seen:
            raise UsageError(f"{where}: {key!r} appears twice; each step may appear once (its frames share a label)")
        seen.add(key)
        base = STEP_LIBRARY[key]
        continuous, sustained = item.get("continuous", base.continuous), item.get("sustained", base.sustained)
        for flag, value in (("continuous", continuous), ("sustained", sustained)):
            if not isinstance(value, bool):
                raise UsageError(f"{where}: {flag} must be true or false, got {value!r}")
        steps.append(replace(
            base,
            title=_text(item.get("title", base.title), f"{where}: title", 60),
            instruction=_text(item.get("instruction", base.instruction), f"{where}: instruction"),
            duration_s=_number(item.get("duration_s", base.duration_s), f"{where}: duration_s", MIN_STEP_S, MAX_STEP_S),
            continuous=continuous, sustained=sustained))
    return Protocol(name, title, tuple(steps), countdown)


def read_protocol(path: Path) -> Protocol:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read protocol file {path}: {e}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise UsageError(f"{path}: a protocol file must end in .toml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not valid {path.suffix[1:].upper()}: {e}") from None
    return protocol_from_dict(data, str(path))


def resolve_protocol(name_or_path: str) -> Protocol:
    """A built-in protocol by name (mg24, short, mg24+ptosis, ptosis), or a custom protocol file."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    if name_or_path.lower().endswith((".toml", ".json")):
        return read_protocol(Path(name_or_path))
    raise UsageError(f"unknown protocol {name_or_path!r}: use {', '.join(BUILTIN)} or a .toml/.json protocol file")
