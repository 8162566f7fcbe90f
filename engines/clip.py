"""Clip runners: the 3D-CNN's exported ONNX model under ONNX Runtime (CPU, CUDA) or TensorRT.

Same life cycle as the landmark runners (activate / infer / deactivate, context manager). ``infer`` takes
uint8 clips (batch, frames, size, size, 3) and returns the probability of class 1 per clip. The model's
ONNX metadata (written by ``facemonitor cnn export``) says its architecture, input size, task, and
whether it holds trained weights; a file without it, or whose input does not match, is refused. A GPU
provider that is missing or that ONNX Runtime silently replaced with the CPU is an error, never a quiet
fallback.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.base import BackendUnavailable, Runner
from engines.trt import EngineRunner, load_or_build, require_gpu

log = logging.getLogger("facemonitor.clip")

MEAN = np.float32(0.45)
STD = np.float32(0.225)
META_PREFIX = "facemonitor."
INPUT_NAME, OUTPUT_NAME = "clip", "logits"


class ClipModelError(ValueError):
    """An ONNX file that is not a facemonitor clip model, or not the one asked for."""


def prepare_clips(clips: np.ndarray) -> np.ndarray:
    """uint8 (B, T, S, S, 3) RGB → float32 (B, 3, T, S, S), normalised as in training."""
    if clips.dtype != np.uint8 or clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(f"expected uint8 clips (batch, frames, size, size, 3), got {clips.dtype} {clips.shape}")
    x = clips.transpose(0, 4, 1, 2, 3).astype(np.float32)
    x *= np.float32(1 / 255)
    x -= MEAN
    x /= STD
    return np.ascontiguousarray(x)


def softmax_p1(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e[:, 1] / e.sum(axis=1)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class ClipModelInfo:
    path: Path
    arch: str
    frames: int
    size: int
    task: str
    trained: bool
    checkpoint_sha256: str

    def check(self, frames: int | None = None, size: int | None = None, arch: str | None = None) -> None:
        for name, want in (("frames", frames), ("size", size), ("arch", arch)):
            if want is not None and getattr(self, name) != want:
                raise ClipModelError(f"{self.path} is a {self.arch} model for {self.frames} frames of "
                                     f"{self.size}×{self.size}; asked for {name} {want}")


def checked_model_info(session, path: Path) -> ClipModelInfo:
    """The model's metadata from an ONNX Runtime session, with its one input checked against it."""
    info = model_info(session.get_modelmeta().custom_metadata_map, path)
    inputs = session.get_inputs()
    shape = inputs[0].shape if len(inputs) == 1 else None
    want_shape = [3, info.frames, info.size, info.size]
    if shape is None or inputs[0].name != INPUT_NAME or list(shape[1:]) != want_shape:
        raise ClipModelError(f"{path}: input {[(i.name, i.shape) for i in inputs]} does not match its "
                             f"metadata (clip: [batch, {', '.join(map(str, want_shape))}])")
    return info


def model_info(meta: dict, path: Path) -> ClipModelInfo:
    try:
        return ClipModelInfo(Path(path), meta[META_PREFIX + "arch"], int(meta[META_PREFIX + "frames"]),
                             int(meta[META_PREFIX + "size"]), meta[META_PREFIX + "task"],
                             meta[META_PREFIX + "trained"] == "true", meta.get(META_PREFIX + "checkpoint_sha256", ""))
    except (KeyError, ValueError):
        raise ClipModelError(f"{path} is not a facemonitor clip model (its ONNX metadata lacks "
                             "facemonitor.arch/frames/size/task; export it with `facemonitor cnn export`)") from None


class ClipRunner(Runner):
    """A clip backend (the runner life cycle of engines.base): ``infer`` scores uint8 clips."""

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)
        self.info: ClipModelInfo | None = None

    def activate(self) -> "ClipRunner":
        if not self._active and not self.path.is_file():
            raise ClipModelError(f"clip model {self.path} does not exist")
        return super().activate()

    def infer(self, clips: np.ndarray) -> np.ndarray:
        """Probability of class 1 for each uint8 clip (B, T, S, S, 3)."""
        self._require_active()
        info = self.info
        if clips.ndim == 4:
            clips = clips[None]
        if clips.shape[1:] != (info.frames, info.size, info.size, 3):
            raise ValueError(f"clips must be (batch, {info.frames}, {info.size}, {info.size}, 3), got {clips.shape}")
        return softmax_p1(self._infer(prepare_clips(clips)))

    @abstractmethod
    def _infer(self, x: np.ndarray) -> np.ndarray: ...


class OrtClipRunner(ClipRunner):
    """ONNX Runtime on the CPU (``device="cpu"``, ``threads`` intra-op threads) or CUDA. ``spin=False``
    keeps ONNX Runtime's threads from spinning after a run (the live CNN: its cores go back to the
    landmarks at once)."""

    def __init__(self, path, device: str = "cpu", threads: int = 1, spin: bool = True) -> None:
        super().__init__(path)
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {device!r}")
        self.device, self.threads, self.spin = device, threads, spin
        self.name = f"onnxruntime-{device}"
        self._session = None

    def _activate(self) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        want = "CUDAExecutionProvider" if self.device == "cuda" else "CPUExecutionProvider"
        if want not in available:
            raise BackendUnavailable(f"ONNX Runtime has no {want} here (pip install 'facemonitor[gpu]'); "
                                     f"available: {', '.join(available)}")
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        if not self.spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(self.path), so, providers=[want])
        except Exception as e:  # ORT raises its own Fail/InvalidProtobuf types
            raise ClipModelError(f"{self.path} is not a readable ONNX model: {str(e).splitlines()[0][:200]}") from None
        if session.get_providers()[0] != want:
            raise BackendUnavailable(f"ONNX Runtime fell back to {session.get_providers()[0]} instead of {want}")
        self.info = checked_model_info(session, self.path)
        self._session = session

    def _deactivate(self) -> None:
        self._session = None

    def _infer(self, x: np.ndarray) -> np.ndarray:
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


class TensorRTClipRunner(ClipRunner):
    """TensorRT engine built from the ONNX model (fp16, or int8 with a calibrator), cached on disk.

    The engine cache (``engines.trt``) is keyed by the ONNX file's SHA-256, the GPU, its compute
    capability, the TensorRT version and the precision, so an engine built for another GPU or version is
    rebuilt, with a log line saying why. Buffers are PyTorch CUDA tensors (the ``train`` extra on a GPU
    machine).
    """

    MAX_BATCH = 16

    def __init__(self, path, precision: str = "fp16", cache_dir: Path | None = None, calibrator=None) -> None:
        super().__init__(path)
        if precision not in ("fp16", "int8", "fp32"):
            raise ValueError(f"precision must be fp16, int8 or fp32, got {precision!r}")
        if precision == "int8" and calibrator is None:
            raise ValueError("int8 needs a calibrator: an object whose tensorrt_calibrator(trt) returns a trt.IInt8Calibrator fed with real face clips")
        self.precision, self.calibrator = precision, calibrator
        self.cache_dir = Path(cache_dir) if cache_dir else self.path.parent / "trt-cache"
        self.name = f"tensorrt-{precision}"
        self._runner = None

    def _activate(self) -> None:
        require_gpu()
        import onnxruntime as ort

        self.info = checked_model_info(ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"]),
                                       self.path)
        shape = (3, self.info.frames, self.info.size, self.info.size)
        engine = load_or_build(self.path, self.cache_dir, self.precision,
                               {INPUT_NAME: ((1, *shape), (1, *shape), (self.MAX_BATCH, *shape))},
                               calibrator=self.calibrator)
        self._runner = EngineRunner(engine)

    def _deactivate(self) -> None:
        self._runner = None

    def _infer(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if n > self.MAX_BATCH:
            return np.concatenate([self._infer(x[i:i + self.MAX_BATCH]) for i in range(0, n, self.MAX_BATCH)])
        return self._runner.run({INPUT_NAME: x})[OUTPUT_NAME]


CLIP_BACKENDS = ("onnxruntime-cpu", "onnxruntime-cuda", "tensorrt-fp16")


def create_clip_runner(path, backend: str = "onnxruntime-cpu", threads: int = 1, spin: bool = True) -> ClipRunner:
    if backend == "onnxruntime-cpu":
        return OrtClipRunner(path, "cpu", threads, spin)
    if backend == "onnxruntime-cuda":
        return OrtClipRunner(path, "cuda", threads, spin)
    if backend == "tensorrt-fp16":
        return TensorRTClipRunner(path, "fp16")
    raise BackendUnavailable(f"unknown clip backend {backend!r}; known: {', '.join(CLIP_BACKENDS)}")
