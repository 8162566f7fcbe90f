"""Typed, frozen options of one session, its delivery mode, and the per-stage timings it keeps."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from monitor.engine.options import CnnOptions


@dataclass
class SessionOptions:
    source: str
    store_root: Path | None = None
    backend: str = "mediapipe"
    mode: str = "record"  # "record": nothing lost; "live": newest frame wins
    realtime: bool = False  # play files at their own frame rate
    repeat: int = 1  # play a file this many times (benchmarks)
    max_seconds: float | None = None
    engine_endpoint: str | None = None  # connect to a running engine instead of starting one
    iris_mm: float | None = None
    person: str | None = None
    window: int = 3  # frames in flight
    reply_timeout_s: float = 30.0
    on_result: Callable[[dict], None] | None = None  # called with each series row (live display)
    on_preview: Callable | None = None  # called with (BGR image, landmarks or None) for a preview window
    step_at: Callable[[float], str] | None = None  # media seconds → protocol step name ("" for none)
    on_start: Callable[[str], None] | None = None  # called with the new session's id
    stop: threading.Event | None = None  # set to end the session (capture stops; frames in flight finish)
    cnn: CnnOptions | None = None  # run the 3D-CNN in the engine (a started engine only)
    on_clip: Callable[[dict], None] | None = None  # called with each clip output of the 3D-CNN


@dataclass
class StageTimes:
    """Per-frame timings in ms, kept for the benchmark."""

    decode: list = field(default_factory=list)
    transport: list = field(default_factory=list)  # client send → engine receive, including queueing behind earlier frames
    landmarks: list = field(default_factory=list)
    kernels: list = field(default_factory=list)
    store: list = field(default_factory=list)
    latency: list = field(default_factory=list)  # capture → result available to the client

    @staticmethod
    def pct(values: list, q: float) -> float | None:
        return round(float(np.percentile(values, q)), 3) if values else None

    def report(self) -> dict:
        return {name: {"p50_ms": self.pct(v, 50), "p95_ms": self.pct(v, 95)}
                for name, v in self.__dict__.items()}
