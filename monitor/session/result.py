"""What a finished (or interrupted) session returns, and the engine take-overs it records."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from monitor.measures.summary import SessionSummary
from monitor.session.options import StageTimes


@dataclass
class SessionResult:
    session_id: str
    status: str
    source: str
    frames: int
    frames_with_face: int
    processing_fps: float | None  # None for photos
    dropped_frames: int
    dropped_frame_ids: list
    rejected_replies: int
    series_path: str | None
    summary: SessionSummary
    error: str | None
    first_result_s: float | None
    stages: StageTimes
    lost_frame_ids: list = field(default_factory=list)  # frames sent to the engine that have no result
    photo_set: dict | None = None  # a photo set's poses (file, step, t_s) and missing poses

    def as_json(self) -> dict:
        out = {
            "session_id": self.session_id, "status": self.status, "source": self.source,
            "frames": self.frames, "frames_with_face": self.frames_with_face,
            "processing_fps": None if self.processing_fps is None else round(self.processing_fps, 2),
            "dropped_frames": self.dropped_frames,
            "rejected_replies": self.rejected_replies, "series_path": self.series_path,
            "summary": self.summary.as_dict(), "error": self.error,
            "latency_ms": self.stages.report()["latency"],
            "lost_frames": len(self.lost_frame_ids), "lost_frame_ranges": frame_ranges(self.lost_frame_ids),
        }
        if self.photo_set is not None:
            out["photo_set"] = self.photo_set
        return out


def frame_ranges(ids) -> str:
    """Frame ids written compactly: ``0-3, 7, 9-12`` (sorted, repeats once)."""
    ids = sorted(set(ids))
    spans, start = [], None
    for prev, cur in zip([None, *ids], [*ids, None]):
        if start is None:
            start = cur
        elif cur is None or cur != prev + 1:
            spans.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(spans)


@dataclass
class FrameLedger:
    """Every frame sent to the engine and what became of it: a result, a `lost` reply (the broker lost
    its engine), a `reject` (the engine refused it) or nothing at all. A session is complete only when
    every frame sent has a result (docs/architecture.md, "Statuses")."""

    sent: int = 0
    answered: int = 0
    lost: dict = field(default_factory=dict)  # frame id → reason, for `lost` replies and rejects naming a frame
    rejects: Counter = field(default_factory=Counter)  # reason → count, for rejects naming no frame

    def missing(self, unanswered) -> list[int]:
        """The frames without a result: those lost or rejected by id and those still waiting (``unanswered``)."""
        return sorted(set(self.lost) | set(unanswered))

    def shortfall(self, unanswered) -> str | None:
        """Why the session is not complete, in one line, or None when every frame sent has a result."""
        missing = self.missing(unanswered)
        if self.sent == 0:
            return "no frame reached the engine"
        if not missing and self.answered >= self.sent:
            return None
        reasons = Counter(self.lost.values()) + self.rejects
        why = "; ".join(f"{n} × {reason}" for reason, n in reasons.most_common(3))
        return (f"{self.sent - self.answered} of {self.sent} frames have no result (frames {frame_ranges(missing)})"
                + (f": {why}" if why else ""))


@dataclass
class EngineGaps:
    """Which engine answers this stream, and the gaps when one is lost and another takes over (behind
    a broker): frames lost and the time from the last result before to the first result after."""

    engine: str | None = None
    last_result_s: float | None = None
    lost_frames: list = field(default_factory=list)
    lost_from: str | None = None

    def lost(self, meta: dict) -> None:
        self.lost_frames.append(meta.get("frame"))
        self.lost_from = meta.get("engine") or self.lost_from

    def result(self, meta: dict, now: float) -> dict | None:
        """The takeover record when this result is the first after a gap, else None."""
        engine = meta.get("engine")
        switch = None
        if self.lost_frames or (self.engine is not None and engine != self.engine):
            frames = [f for f in self.lost_frames if f is not None]
            switch = {"from": self.lost_from or self.engine, "to": engine, "frames_lost": len(self.lost_frames),
                      "first_lost": min(frames) if frames else None, "last_lost": max(frames) if frames else None,
                      "gap_s": round(now - self.last_result_s, 3) if self.last_result_s is not None else None}
            self.lost_frames, self.lost_from = [], None
        self.engine, self.last_result_s = engine, now
        return switch
