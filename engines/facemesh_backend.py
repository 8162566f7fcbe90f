"""Landmark backends on the exported ONNX networks, without the MediaPipe runtime: ONNX Runtime on
the CPU or CUDA, and TensorRT. Results have the same form as the MediaPipe backend's.

Runners of one process and configuration share one set of loaded networks; each runner (one per
stream) keeps its own tracking state, and ``infer_batch`` sends the frames of several streams
through the landmark network together.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from engines.base import BackendUnavailable, LandmarkResult, LandmarkRunner
from engines.facemesh.geometry import CanonicalFace, FaceGeometry
from engines.facemesh.models import LandmarkModelError, ModelSet, check_io, load_model_set
from engines.facemesh.pipeline import FaceMeshPipeline, PipelineOptions, Track
from engines.trt import EngineRunner, load_or_build

_LANDMARK_MAX_BATCH = 16


class _NetworkCalls:
    """``Inference`` on top of ``_run(role, x)``, which returns a network's outputs in the ONNX file's
    order; the landmark network runs in chunks of at most ``_LANDMARK_MAX_BATCH``."""

    def _run(self, role: str, x: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def detect(self, x):
        reg, scores = self._run("detector", x)
        return reg.reshape(896, 16), scores.reshape(896)

    def landmarks(self, x):
        outs = [self._run("landmarks", x[i:i + _LANDMARK_MAX_BATCH]) for i in range(0, len(x), _LANDMARK_MAX_BATCH)]
        return (np.concatenate([o[0] for o in outs]).reshape(len(x), 478, 3),
                np.concatenate([o[1] for o in outs]).reshape(len(x)))

    def blendshapes(self, x):
        return self._run("blendshapes", x)[0]


class OrtInference(_NetworkCalls):
    """The three networks in ONNX Runtime sessions on one device; no silent fallback to another."""

    def __init__(self, models: ModelSet, device: str = "cpu", threads: int = 0) -> None:
        import onnxruntime as ort

        want = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}[device]
        available = ort.get_available_providers()
        if want not in available:
            raise BackendUnavailable(f"ONNX Runtime has no {want} here (pip install 'facemonitor[gpu]'); "
                                     f"available: {', '.join(available)}")
        self.name = f"onnxruntime-{device}"
        self.sessions = {}
        for role in ("detector", "landmarks", "blendshapes"):
            so = ort.SessionOptions()
            # only the landmark network gets a thread pool: each session's pool spins after its run,
            # and three pools on few cores took turns starving each other (12.3 → 8.7 ms per frame
            # on 2 cores); the detector and blendshape networks gain nothing from more threads
            so.intra_op_num_threads = threads if role == "landmarks" else 1
            so.inter_op_num_threads = 1
            # a pool that spins after each run burns a core the capture thread and the client need,
            # and on a busy machine it spins in place of the work (docs/performance.md)
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.add_session_config_entry("session.inter_op.allow_spinning", "0")
            so.log_severity_level = 3
            try:
                s = ort.InferenceSession(str(models.path(role)), so, providers=[want])
            except Exception as e:  # ORT raises its own Fail/InvalidProtobuf types
                raise LandmarkModelError(f"{models.path(role)} does not load: {str(e).splitlines()[0][:160]}") from None
            if s.get_providers()[0] != want:
                raise BackendUnavailable(f"ONNX Runtime fell back to {s.get_providers()[0]} instead of {want}")
            check_io(models.path(role), role, s)
            self.sessions[role] = (s, s.get_inputs()[0].name)

    def _run(self, role: str, x: np.ndarray) -> list[np.ndarray]:
        session, name = self.sessions[role]
        return session.run(None, {name: x})


class TensorRTInference(_NetworkCalls):
    """The landmark network as a TensorRT fp16 engine with a dynamic batch (1…16); the detector and
    blendshape networks (batch 1, run once per stream) likewise, each cached by ``engines.trt``."""

    def __init__(self, models: ModelSet, precision: str = "fp16", cache_dir: Path | None = None) -> None:
        self.name = f"tensorrt-{precision}"
        cache = Path(cache_dir) if cache_dir else models.folder / "tensorrt"
        import onnxruntime as ort

        io = {}
        for role in ("detector", "landmarks", "blendshapes"):
            session = ort.InferenceSession(str(models.path(role)), providers=["CPUExecutionProvider"])
            check_io(models.path(role), role, session)
            inp = session.get_inputs()[0]
            shape = tuple(d if isinstance(d, int) else 1 for d in inp.shape)
            hi = (_LANDMARK_MAX_BATCH, *shape[1:]) if role == "landmarks" else shape
            engine = load_or_build(models.path(role), cache, precision, {inp.name: (shape, shape, hi)},
                                   onnx_sha256=models.sha256(role))
            io[role] = (EngineRunner(engine), inp.name, [o.name for o in session.get_outputs()])
        self._io = io

    def _run(self, role, x) -> list[np.ndarray]:
        runner, name, outputs = self._io[role]
        got = runner.run({name: x})
        return [got[o] for o in outputs]  # in the ONNX file's output order, as ONNX Runtime gives them


# configuration → (pipeline, users); runners of one process share the loaded networks
_shared: dict[tuple, list] = {}
_shared_lock = threading.Lock()


class FaceMeshLandmarker(LandmarkRunner):
    """478 landmarks, 52 blendshapes and the transformation matrix from the exported networks."""

    name = "onnx"

    def __init__(self, models_dir: str | Path | None = None, model_path: str | Path | None = None,
                 tracking: str | None = None, threads: int | None = None, max_faces: int = 4,
                 min_detection_confidence: float = 0.5, min_presence_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        super().__init__()
        self.models_dir = models_dir or os.environ.get("FACEMONITOR_ONNX_DIR")
        self.model_path = model_path
        tracking = tracking or os.environ.get("FACEMONITOR_TRACKING", "detector")
        self.options = PipelineOptions(min_detection_confidence, min_presence_confidence, tracking)
        # one thread by default: in ``analyze`` the capture thread and the client share the cores with
        # the engine, and a second landmark thread cost more CPU per frame than it saved in wall time
        # (docs/performance.md); 0 = ONNX Runtime's choice (one per core)
        self.threads = int(os.environ.get("FACEMONITOR_ONNX_THREADS", "1")) if threads is None else threads
        self._key: tuple | None = None
        self.pipeline: FaceMeshPipeline | None = None
        self.track = Track()

    def _inference(self, models: ModelSet):
        raise NotImplementedError

    def _activate(self) -> None:
        # keyed by the configuration, so the export is hashed and checked when its networks are
        # loaded, not again for every stream that shares them
        key = (type(self).__name__, str(self.models_dir), str(self.model_path), self.options, self.threads)
        with _shared_lock:
            entry = _shared.get(key)
            if entry is None:
                # the networks' inputs and outputs are checked on the sessions the inference loads
                models = load_model_set(self.models_dir, self.model_path, check_networks=False)
                geometry = FaceGeometry(CanonicalFace.from_file(models.geometry))
                entry = _shared[key] = [FaceMeshPipeline(self._inference(models), geometry, self.options), 0]
            entry[1] += 1
        self._key, self.pipeline = key, entry[0]
        self.track = Track()

    def _deactivate(self) -> None:
        with _shared_lock:
            entry = _shared.get(self._key)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del _shared[self._key]
        self.pipeline = None

    def _infer(self, rgb: np.ndarray, timestamp_ms: int) -> LandmarkResult:
        return self.pipeline.process([self.track], [rgb], [timestamp_ms])[0]

    @classmethod
    def infer_batch(cls, runners, frames, timestamps):
        for r, f, t in zip(runners, frames, timestamps, strict=True):
            r._accept(f, t)
        out: list[LandmarkResult | None] = [None] * len(runners)
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(runners):
            groups.setdefault(id(r.pipeline), []).append(i)
        for idx in groups.values():
            pipeline = runners[idx[0]].pipeline
            results = pipeline.process([runners[i].track for i in idx], [frames[i] for i in idx],
                                       [timestamps[i] for i in idx])
            for i, res in zip(idx, results):
                out[i] = res
        return out


class OnnxCpuLandmarker(FaceMeshLandmarker):
    name = "onnx"

    def _inference(self, models):
        return OrtInference(models, "cpu", self.threads)


class OnnxCudaLandmarker(FaceMeshLandmarker):
    name = "onnx-cuda"

    def _inference(self, models):
        return OrtInference(models, "cuda", self.threads)


class TensorRTLandmarker(FaceMeshLandmarker):
    name = "tensorrt"

    def _inference(self, models):
        return TensorRTInference(models, "fp16")
