"""What a finished (or interrupted) session returns, and the engine take-overs it records."""

from __future__ import annotations

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
        }
        if self.photo_set is not None:
            out["photo_set"] = self.photo_set
        return out


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
