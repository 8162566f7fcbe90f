"""Pure bookkeeping of one pass over a recording (a file, or a finite recording behind a URL): each
frame's media time from the container's presentation times, and whether the pass decoded what the
container promised. The capture thread (monitor.capture.thread) feeds it; nothing here does I/O.

- ``MediaClock``: media time in µs from each frame's presentation time (``CAP_PROP_POS_MSEC`` after
  the read), so a variable-frame-rate video keeps its real timing. A frame without a presentation
  time, or with one that goes backwards (a damaged stream), is placed one nominal frame interval after
  the previous one: media time always rises.
- ``PassTally``: frames decoded against the container's frame count, and reads that failed and then
  resumed (a damaged stretch). ``shortfall()`` says, in one line, why a pass is incomplete, or None.
"""

from __future__ import annotations

from dataclasses import dataclass

BAD_READS_MAX = 64  # consecutive failed reads tried before a recording counts as ended (damage may resume)
# containers' frame counts are off by a few frames (the registry's own no_face.mp4 lists 98 frames of
# which FFmpeg decodes 95, the last ones undecodable reordered frames), and long ones by a small share
COUNT_SLACK_FRAMES = 4
COUNT_SLACK_FRACTION = 0.05


class MediaClock:
    """Media time (µs from the first frame) of each decoded frame from its presentation time (ms)."""

    def __init__(self, fps: float) -> None:
        self.step_us = 1e6 / fps
        self.offset_us = 0  # where this pass starts (later passes of a repeated file follow the earlier)
        self.first_ms: float | None = None  # the pass's first presentation time
        self.last_us: int | None = None  # the last media time handed out
        self.last_pts_ms: float | None = None  # the last presentation time seen, as the container gave it

    def stamp(self, pts_ms: float) -> int:
        if self.first_ms is None:
            self.first_ms = pts_ms
        t_us = self.offset_us + round((pts_ms - self.first_ms) * 1000)
        if self.last_us is not None and t_us <= self.last_us:
            t_us = self.last_us + round(self.step_us)  # no (or a backward) presentation time
        self.last_us = t_us
        self.last_pts_ms = pts_ms if self.last_pts_ms is None else max(self.last_pts_ms, pts_ms)
        return t_us

    def seen(self, pts_ms: float) -> bool:
        """Whether a frame at ``pts_ms`` was already handed out (a reopened recording starting over)."""
        return self.last_pts_ms is not None and pts_ms <= self.last_pts_ms

    def next_pass(self) -> None:
        """A repeated file starts again: its first frame comes one interval after the last one."""
        if self.last_us is not None:
            self.offset_us = self.last_us + round(self.step_us)
        self.first_ms = self.last_pts_ms = None


@dataclass
class PassTally:
    """Frames decoded in one pass against the container's count (``expected`` ≤ 0: it gives none)."""

    expected: int
    fps: float
    decoded: int = 0
    failed_in_a_row: int = 0
    resumed_after: int = 0  # failed reads that were followed by a decoded frame: a damaged stretch
    first_damage_at: int | None = None  # frames decoded before the first damaged stretch
    reached_ms: float = 0.0  # presentation time of the last decoded frame, from the pass's first

    def decoded_frame(self, t_ms: float) -> None:
        if self.failed_in_a_row:
            self.resumed_after += self.failed_in_a_row
            if self.first_damage_at is None:
                self.first_damage_at = self.decoded
        self.failed_in_a_row = 0
        self.decoded += 1
        self.reached_ms = max(self.reached_ms, t_ms)

    def failed_read(self) -> bool:
        """Count a failed read; True when reading should go on (the promised frames are not all in)."""
        self.failed_in_a_row += 1
        return self.failed_in_a_row < BAD_READS_MAX and (self.expected <= 0 or self.decoded < self.expected)

    @property
    def slack(self) -> int:
        return max(COUNT_SLACK_FRAMES, round(COUNT_SLACK_FRACTION * max(self.expected, 0)))

    def reached_the_end(self) -> bool:
        """The pass decoded what the container promised, within its slack (in frames or in time: the
        count of a variable-frame-rate file without a frame table is estimated from its duration)."""
        if self.expected <= 0 or self.decoded >= self.expected - self.slack:
            return True
        end_ms = self.expected / self.fps * 1000
        return self.reached_ms + 1000 / self.fps >= end_ms - self.slack * 1000 / self.fps

    def shortfall(self) -> str | None:
        """Why this pass is incomplete (damaged or truncated media), or None."""
        listed = f"{self.expected} the container lists" if self.expected > 0 else "an unknown number"
        if self.resumed_after:
            return (f"damaged media: decoding failed after frame {self.first_damage_at} and resumed later; "
                    f"{self.decoded} frames decoded of {listed}")
        if not self.reached_the_end():
            return (f"truncated media: {self.decoded} frames decoded of {listed} "
                    f"(the pictures end at {(self.reached_ms * 1e-3 + 1 / self.fps):.2f} s of "
                    f"{self.expected / self.fps:.2f} s)")
        return None
