"""The pure state machine that drives a protocol: countdowns, steps, quality gating, and the
person's repeat / skip / pause / resume / abort.

Nothing here reads a clock or a camera: every call passes the time (seconds, monotonic) and, for
``tick``, whether the newest frame passed the quality check. That makes every transition testable
on its own and lets the app drive it from frame results (and from its poll timer when frames stop).

Phases::

    ready ──start──► countdown ──(quality held for countdown_s)──► step ──(duration_s of good
      frames)──► countdown of the next step … ──► done
    any running phase ──pause──► paused ──resume──► countdown (of the same step)
    any phase but done ──abort──► aborted

A countdown advances only while quality holds. During a step, only good frames count toward its
duration, so a step with breaks is extended; a ``continuous`` step (sustained gaze) whose quality
breaks for more than ``grace_s`` is restarted from its countdown, because its point is unbroken
effort. ``repeat`` restarts the current step (or, during a countdown, the step just finished).

Whether the person did what a step asked is judged from the frames (``monitor.measures.compliance``),
not here: the caller reports a step it could not see done with ``not_performed`` (the record keeps
status ``not_performed`` and the reason, and ``repeat`` during the next countdown does it again), and
ends a step early with ``end_early`` (the ptosis upgaze step, once the lid has dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from monitor.protocol.definitions import Protocol, ProtocolStep


class Phase(StrEnum):
    READY = "ready"
    COUNTDOWN = "countdown"
    STEP = "step"
    PAUSED = "paused"
    DONE = "done"
    ABORTED = "aborted"


READY, COUNTDOWN, STEP, PAUSED, DONE, ABORTED = Phase
GRACE_S = 0.5  # a quality break shorter than this does not restart a continuous step
MAX_TICK_S = 0.5  # a gap between ticks longer than this counts only this much (stalls are not good time)
EPS_S = 1e-6  # sums of frame intervals reach a duration within rounding


@dataclass
class StepRecord:
    """How one step went: what the store keeps per step."""

    index: int
    step: str
    status: str = "pending"  # pending | running | done | not_performed | skipped | aborted
    started_s: float | None = None  # time the step's recording first began
    ended_s: float | None = None
    counted_s: float = 0.0  # seconds of good-quality frames that count toward the step
    attempts: int = 0  # times the step's recording was started (restarts and repeats add one)
    quality_lost_s: float = 0.0  # seconds of the step spent with quality failing
    performed: bool | None = None  # did the frames show what the step asked (None: not checked)
    reason: str = ""  # why (monitor.measures.compliance), or why the step ended early


@dataclass(frozen=True)
class RunView:
    """What the UI shows at one moment."""

    phase: Phase
    index: int  # current step (len(steps) when done)
    step: ProtocolStep | None
    remaining_s: float  # countdown seconds left, or step seconds of good frames left
    counting: bool  # the newest frame counts toward the step
    progress: float  # 0–1 over the whole protocol, by counted time
    message: str  # one plain-language line about what is happening


@dataclass
class ProtocolRun:
    protocol: Protocol
    grace_s: float = GRACE_S
    phase: Phase = READY
    index: int = 0
    records: list[StepRecord] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, kind, detail) for the store
    _countdown_left: float = 0.0
    _last_t: float | None = None
    _bad_since: float | None = None
    _counting: bool = False

    def __post_init__(self) -> None:
        if not self.records:
            self.records = [StepRecord(i, s.step) for i, s in enumerate(self.protocol.steps)]

    # -- queries ----------------------------------------------------------------------------------
    @property
    def current(self) -> ProtocolStep | None:
        return self.protocol.steps[self.index] if self.index < len(self.protocol.steps) else None

    @property
    def finished(self) -> bool:
        return self.phase in (DONE, ABORTED)

    @property
    def counting(self) -> bool:
        """Whether the newest frame counted toward the current step (its frames get its label)."""
        return self.phase == STEP and self._counting

    def label(self) -> str:
        """The step name for the newest frame: the step's name while it counts, else ""."""
        return self.current.step if self.counting and self.current else ""

    def view(self, message: str = "") -> RunView:
        step = self.current
        if self.phase == COUNTDOWN:
            remaining = self._countdown_left
        elif step is not None and self.phase in (STEP, PAUSED):
            remaining = max(0.0, step.duration_s - self.records[self.index].counted_s)
        else:
            remaining = 0.0
        total = sum(s.duration_s for s in self.protocol.steps)
        finished = ("done", "not_performed", "skipped")  # an early end counts as the whole step
        done = sum(s.duration_s if r.status in finished else min(r.counted_s, s.duration_s)
                   for r, s in zip(self.records, self.protocol.steps))
        return RunView(self.phase, self.index, step, round(remaining, 3), self.counting,
                       min(1.0, done / total) if total else 1.0, message or self._default_message())

    def _default_message(self) -> str:
        step = self.current
        return {
            READY: "Press Start when you are ready.",
            COUNTDOWN: f"Get ready: {step.title}" if step else "",
            STEP: step.instruction if step else "",
            PAUSED: "Paused. Press Resume to go on.",
            DONE: "All steps done.",
            ABORTED: "Stopped before the end.",
        }[self.phase]

    # -- transitions --------------------------------------------------------------------------------
    def _event(self, t: float, kind: str, detail: str = "") -> None:
        self.events.append((t, kind, detail))

    def _enter_countdown(self, t: float) -> None:
        self.phase = COUNTDOWN
        self._countdown_left = self.protocol.countdown_s
        self._counting = False
        self._bad_since = None
        if self._countdown_left <= 0:
            self._enter_step(t)

    def _enter_step(self, t: float) -> None:
        rec = self.records[self.index]
        self.phase = STEP
        rec.status = "running"
        rec.attempts += 1
        if rec.started_s is None:
            rec.started_s = t
        self._bad_since = None
        self._event(t, "step_started", f"{rec.step} (attempt {rec.attempts})")

    def _advance(self, t: float) -> None:
        self.index += 1
        self._counting = False
        if self.index >= len(self.protocol.steps):
            self.phase = DONE
            self._event(t, "protocol_done", self.protocol.name)
        else:
            self._enter_countdown(t)

    def start(self, t: float) -> None:
        if self.phase != READY:
            raise RuntimeError(f"start from {self.phase}: a run starts once")
        self._last_t = t
        self._event(t, "protocol_started", self.protocol.name)
        self._enter_countdown(t)

    def tick(self, t: float, quality_ok: bool) -> None:
        """Time passes to ``t`` with the newest frame's quality verdict."""
        dt = 0.0 if self._last_t is None else min(max(t - self._last_t, 0.0), MAX_TICK_S)
        self._last_t = t if self._last_t is None else max(t, self._last_t)
        if self.phase == COUNTDOWN:
            self._counting = False
            if quality_ok:
                self._countdown_left = max(0.0, self._countdown_left - dt)
                if self._countdown_left <= EPS_S:
                    self._enter_step(t)
            return
        if self.phase != STEP:
            self._counting = False
            return
        rec = self.records[self.index]
        step = self.current
        if quality_ok:
            self._bad_since = None
            rec.counted_s += dt
            self._counting = True
        else:
            self._counting = False
            rec.quality_lost_s += dt
            if self._bad_since is None:
                self._bad_since = t
            elif step.continuous and t - self._bad_since > self.grace_s:
                self._event(t, "step_restarted", f"{rec.step}: quality lost for more than {self.grace_s:g} s "
                                                 "during a step that must be held unbroken")
                rec.counted_s = 0.0
                self._enter_countdown(t)
                return
        if rec.counted_s >= step.duration_s - EPS_S:
            rec.status, rec.ended_s = "done", t
            self._event(t, "step_done", f"{rec.step}: {rec.counted_s:.1f} s counted, {rec.attempts} attempt(s)")
            self._advance(t)

    def not_performed(self, t: float, index: int, reason: str) -> None:
        """The frames of step ``index`` (finished, or running) did not show what it asked."""
        if not 0 <= index < len(self.records):
            raise IndexError(f"no step {index} in a protocol of {len(self.records)}")
        rec = self.records[index]
        rec.performed, rec.reason = False, reason
        if rec.status == "done":
            rec.status = "not_performed"
        self._event(t, "step_not_performed", f"{rec.step}: {reason}")

    def end_early(self, t: float, reason: str) -> None:
        """End the running step now, as done (a sustained step whose end point was reached)."""
        if self.phase != STEP:
            return
        rec = self.records[self.index]
        rec.status, rec.ended_s, rec.reason = "done", t, reason
        self._event(t, "step_ended_early", f"{rec.step}: {reason} after {rec.counted_s:.1f} s counted")
        self._advance(t)

    def pause(self, t: float) -> None:
        if self.phase not in (COUNTDOWN, STEP):
            return
        self.phase = PAUSED
        self._counting = False
        self._event(t, "paused", self.current.step)

    def resume(self, t: float) -> None:
        if self.phase != PAUSED:
            return
        self._last_t = t
        rec = self.records[self.index]
        if self.current.continuous and rec.counted_s > 0:
            self._event(t, "step_restarted", f"{rec.step}: paused during a step that must be held unbroken")
            rec.counted_s = 0.0
        self._event(t, "resumed", rec.step)
        self._enter_countdown(t)

    def repeat(self, t: float) -> None:
        """Do the current step again from its countdown; during a countdown, the step before it."""
        if self.phase not in (COUNTDOWN, STEP, PAUSED):
            return
        if self.phase == COUNTDOWN and self.index > 0 and self.records[self.index].attempts == 0:
            self.index -= 1
        rec = self.records[self.index]
        rec.counted_s = 0.0
        rec.status = "pending"
        rec.ended_s = None
        rec.performed, rec.reason = None, ""
        self._event(t, "step_repeated", rec.step)
        self._last_t = t
        self._enter_countdown(t)

    def skip(self, t: float) -> None:
        if self.phase not in (COUNTDOWN, STEP, PAUSED):
            return
        rec = self.records[self.index]
        rec.status, rec.ended_s = "skipped", t
        self._event(t, "step_skipped", f"{rec.step}: skipped after {rec.counted_s:.1f} s counted")
        self._last_t = t
        self._advance(t)

    def abort(self, t: float) -> None:
        if self.finished:
            return
        if self.index < len(self.records) and self.records[self.index].status in ("running", "pending"):
            rec = self.records[self.index]
            if rec.attempts:
                rec.status, rec.ended_s = "aborted", t
        self.phase = ABORTED
        self._counting = False
        self._event(t, "protocol_aborted", self.current.step if self.current else "")
