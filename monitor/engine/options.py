"""Typed options of the engine process that its clients pass on its command line."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.cnn.modes import CnnMode
from monitor.transport.wire import DEFAULT_MAX_PIXELS, max_part_bytes


@dataclass(frozen=True)
class CnnOptions:
    """The 3D-CNN beside the landmarks (see monitor/cnn/live.py)."""

    model: str
    stride: int = 32
    mode: CnnMode = CnnMode.LIVE
    backend: str = "onnxruntime-cpu"
    threads: int = 1
    benchmark: bool = False  # an untrained model for timing: outputs carry no probability

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", CnnMode(self.mode))  # "live"/"all" from the command line too

    def args(self) -> list[str]:
        extra = ["--cnn", self.model, "--cnn-stride", str(self.stride), "--cnn-mode", self.mode,
                 "--cnn-backend", self.backend, "--cnn-threads", str(self.threads)]
        return extra + (["--cnn-benchmark"] if self.benchmark else [])


@dataclass(frozen=True)
class EngineLimits:
    """What one engine takes on, so no client (or stream of clients) can exhaust it (docs/engines.md)."""

    max_streams: int = 32  # streams open at once; a new one beyond this is refused with a reason
    stream_idle_s: float = 60.0  # a stream with no message for this long is closed and its runner freed
    # (longer than any client waits for its source: analyze --source-timeout is at most 50 s)
    max_pixels: int = DEFAULT_MAX_PIXELS  # height × width of one frame, checked from the header before decoding
    max_queued: int = 8  # messages waiting per stream (a client keeps at most 3 in flight)

    def __post_init__(self) -> None:
        if self.max_streams < 1 or self.stream_idle_s <= 0 or self.max_pixels < 1 or self.max_queued < 1:
            raise ValueError("engine limits must be positive")

    @property
    def max_part_bytes(self) -> int:
        """ZMQ_MAXMSGSIZE: the largest part ZeroMQ will allocate (the largest allowed frame, 4 bytes a pixel)."""
        return max_part_bytes(self.max_pixels)

    @property
    def max_message_bytes(self) -> int:
        """The whole message: header plus pixels."""
        return self.max_part_bytes + 4096
