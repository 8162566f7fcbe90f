"""Typed, frozen options of one session, its delivery mode, and the per-stage timings it keeps."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Callable

import numpy as np

from monitor.engine.options import CnnOptions


class Mode(StrEnum):
    """How frames are delivered (docs/architecture.md, "Delivery modes")."""

    RECORD = "record"  # nothing lost: a file is read only as fast as the engine takes frames
    LIVE = "live"  # the newest frame wins; replaced frames are counted and logged as dropped
    PHOTO = "photo"  # one photo: a one-frame session, delivered as in record mode
    PHOTO_SET = "photo_set"  # a palsy photo set: one frame (and one step) per pose, as in record mode

    @property
    def delivery(self) -> str:
        """The mailbox's mode: "live" or "record"."""
        return "live" if self is Mode.LIVE else "record"

    @property
    def still(self) -> bool:
        """Photos: no time passes, so measures that need it (rates, fatigue) are left out."""
        return self in (Mode.PHOTO, Mode.PHOTO_SET)


@dataclass(frozen=True)
class SessionOptions:
    """What one session analyses and how; hooks let a UI see each result before it is written."""

    source: str
    store_root: Path | None = None
    backend: str = "mediapipe"
    mode: Mode = Mode.RECORD
    realtime: bool = False  # play files at their own frame rate
    repeat: int = 1  # play a file this many times (benchmarks)
    max_seconds: float | None = None
    engine_endpoint: str | None = None  # connect to a running engine instead of starting one
    iris_mm: float | None = None
    person: str | None = None
    window: int = 3  # frames in flight
    reply_timeout_s: float = 30.0
    source_timeout_s: float = 30.0  # a camera or stream that gives no frame this long (reconnecting) ends the session
    on_result: Callable[[dict], None] | None = None  # called with each series row (live display)
    on_preview: Callable | None = None  # called with (BGR image, landmarks or None) for a preview window
    step_at: Callable[[float], str] | None = None  # media seconds → protocol step name ("" for none)
    sustained_steps: tuple[str, ...] | None = None  # steps given fatigue curves (a protocol's); None: the defaults
    on_start: Callable[[str], None] | None = None  # called with the new session's id
    stop: threading.Event | None = None  # set to end the session (capture stops; frames in flight finish)
    cnn: CnnOptions | None = None  # run the 3D-CNN in the engine (a started engine only)
    on_clip: Callable[[dict], None] | None = None  # called with each clip output of the 3D-CNN


    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(self.mode))  # a plain "live"/"record" is accepted too


@dataclass
class StageTimes:
    """Per-frame timings in ms, kept for the benchmark."""

    decode: list = field(default_factory=list)
    transport: list = field(default_factory=list)  # client send → engine receive, including queueing behind earlier frames
    landmarks: list = field(default_factory=list)
    kernels: list = field(default_factory=list)
    store: list = field(default_factory=list)
    latency: list = field(default_factory=list)  # capture → result available to the client

    def add(self, *, decode_ms: float, transport_ms: float, landmarks_ms: float, kernels_ms: float, store_ms: float,
            latency_ms: float) -> None:
        """One frame's timings."""
        self.decode.append(decode_ms)
        self.transport.append(transport_ms)
        self.landmarks.append(landmarks_ms)
        self.kernels.append(kernels_ms)
        self.store.append(store_ms)
        self.latency.append(latency_ms)

    @staticmethod
    def pct(values: list, q: float) -> float | None:
        return round(float(np.percentile(values, q)), 3) if values else None

    def report(self) -> dict:
        return {name: {"p50_ms": self.pct(v, 50), "p95_ms": self.pct(v, 95)}
                for name, v in self.__dict__.items()}
