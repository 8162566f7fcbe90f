"""The runner interface every landmark backend implements, and the backend registry."""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from engines.errors import FacemonitorError

# MediaPipe's 52 blendshape category names, in model output order.
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)


@dataclass(frozen=True, slots=True)
class LandmarkResult:
    """One frame's landmarker output for the largest face (or no face).

    landmarks_px: (478, 3) float32 — x, y in image pixels, z in the same scale as x.
    blendshapes: (52,) float32 in BLENDSHAPE_NAMES order.
    matrix: (4, 4) float32 facial transformation matrix (canonical face → camera, OpenGL axes).
    faces: how many faces the model found (the largest is reported; > 1 flags the frame).
    """

    faces: int
    landmarks_px: np.ndarray | None = None
    blendshapes: np.ndarray | None = None
    matrix: np.ndarray | None = None

    @property
    def face(self) -> bool:
        return self.landmarks_px is not None

    def __post_init__(self) -> None:
        if self.landmarks_px is None:
            if self.blendshapes is not None or self.matrix is not None:
                raise ValueError("a result without landmarks cannot carry blendshapes or a matrix")
            return
        if self.landmarks_px.shape != (478, 3):
            raise ValueError(f"landmarks_px must be (478, 3), got {self.landmarks_px.shape}")
        if self.blendshapes is None or self.blendshapes.shape != (52,):
            raise ValueError("blendshapes must be (52,)")
        if self.matrix is None or self.matrix.shape != (4, 4):
            raise ValueError("matrix must be (4, 4)")

    @classmethod
    def no_face(cls) -> "LandmarkResult":
        return cls(0)


class BackendUnavailable(FacemonitorError, RuntimeError):
    """A backend was asked for that is unknown or whose packages are not installed."""


class Runner(ABC):
    """The life cycle every model runner shares (landmark and clip runners alike, in the style of
    Polygraphy's runners): ``activate`` loads the model, ``deactivate`` frees it, a runner is a context
    manager, and inference before ``activate`` is an error that says so."""

    name: str = "?"

    def __init__(self) -> None:
        self._active = False

    @property
    def is_active(self) -> bool:
        return self._active

    def activate(self):
        if not self._active:
            self._activate()
            self._active = True
        return self

    def deactivate(self) -> None:
        if self._active:
            self._active = False
            self._deactivate()

    def _require_active(self) -> None:
        if not self._active:
            raise RuntimeError(f"{self.name} runner is not active; call activate() or use it in a with-block")

    def __enter__(self):
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    @abstractmethod
    def _activate(self) -> None: ...

    @abstractmethod
    def _deactivate(self) -> None: ...


class LandmarkRunner(Runner):
    """A landmark backend: ``infer`` runs one frame. Timestamps must strictly increase."""

    def __init__(self) -> None:
        super().__init__()
        self._last_ts_ms: int | None = None

    def activate(self) -> "LandmarkRunner":
        if not self._active:
            self._last_ts_ms = None  # VIDEO mode timestamps start again
        return super().activate()

    def infer(self, rgb: np.ndarray, timestamp_ms: int) -> LandmarkResult:
        """Landmarks for one RGB uint8 (H, W, 3) frame taken at ``timestamp_ms``."""
        self._accept(rgb, timestamp_ms)
        return self._infer(rgb, timestamp_ms)

    @classmethod
    def infer_batch(cls, runners: list["LandmarkRunner"], frames: list[np.ndarray],
                    timestamps: list[int]) -> list[LandmarkResult]:
        """One frame for each of several runners (streams). Backends that batch across streams
        override this; the default runs them one after another."""
        return [r.infer(f, t) for r, f, t in zip(runners, frames, timestamps, strict=True)]

    def _accept(self, rgb: np.ndarray, timestamp_ms: int) -> None:
        self._require_active()
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
        if self._last_ts_ms is not None and timestamp_ms <= self._last_ts_ms:
            raise ValueError(
                f"timestamps must increase: {timestamp_ms} ms after {self._last_ts_ms} ms"
            )
        self._last_ts_ms = timestamp_ms

    @abstractmethod
    def _infer(self, rgb: np.ndarray, timestamp_ms: int) -> LandmarkResult: ...


# name → (module, class, python packages it needs, pip extra that installs them)
_BACKENDS = {
    "mediapipe": ("engines.mediapipe_backend", "MediaPipeLandmarker", ("mediapipe",), "(core)"),
    # the same networks exported to ONNX (facemonitor models export-onnx), without the MediaPipe runtime
    "onnx": ("engines.facemesh_backend", "OnnxCpuLandmarker", ("onnxruntime",), "(core)"),
    "onnx-cuda": ("engines.facemesh_backend", "OnnxCudaLandmarker", ("onnxruntime",), "gpu"),
    "tensorrt": ("engines.facemesh_backend", "TensorRTLandmarker", ("tensorrt", "torch"), "gpu,train"),
}


def _installed(packages: tuple[str, ...]) -> bool:
    return all(importlib.util.find_spec(p) is not None for p in packages)


# backend → the ONNX Runtime execution provider it needs besides its packages
_PROVIDERS = {"onnx-cuda": "CUDAExecutionProvider"}


def _onnxruntime_providers() -> list[str]:
    import onnxruntime  # only asked when a backend needs a provider

    return onnxruntime.get_available_providers()


def backend_unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run on this machine, or None when it can."""
    _, _, pkgs, extra = _BACKENDS[name]
    if not _installed(pkgs):
        return f"needs {', '.join(pkgs)}: pip install 'facemonitor[{extra}]'"
    provider = _PROVIDERS.get(name)
    if provider and provider not in _onnxruntime_providers():
        return f"ONNX Runtime has no {provider}: needs an NVIDIA GPU and pip install 'facemonitor[{extra}]'"
    return None


def available_backends() -> list[str]:
    """The backends that can run on this machine (packages installed, GPU provider present)."""
    return [name for name in _BACKENDS if backend_unavailable_reason(name) is None]


def backends_note(leave_out: str | None = None) -> str:
    """What can run here and what cannot and why (but ``leave_out``), for error messages."""
    unavailable = [f"{n} ({why})" for n in _BACKENDS
                   if n != leave_out and (why := backend_unavailable_reason(n)) is not None]
    return f"available: {', '.join(available_backends()) or 'none'}" + (
        f"; unavailable here: {'; '.join(unavailable)}" if unavailable else "")


def check_backend(name: str) -> None:
    """Raise BackendUnavailable, naming what can run here, unless backend ``name`` can run here."""
    if name not in _BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; {backends_note()}")
    why = backend_unavailable_reason(name)
    if why is not None:
        raise BackendUnavailable(f"backend {name!r} cannot run here: {why}; {backends_note(name)}")


def create_runner(name: str, **options) -> LandmarkRunner:
    """A runner for backend ``name`` (not yet activated)."""
    check_backend(name)
    module, cls, _, _ = _BACKENDS[name]
    return getattr(importlib.import_module(module), cls)(**options)
