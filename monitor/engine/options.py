"""Typed options of the engine process that its clients pass on its command line."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.cnn.modes import CnnMode


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
