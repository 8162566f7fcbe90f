"""TensorRT engines built from ONNX files, cached on disk, and run with PyTorch CUDA buffers.

The cache key is the ONNX file's SHA-256, the GPU's name and compute capability, the TensorRT
version and the precision; it is written beside each engine (``.json``). An engine found under
another key, or one that no longer deserialises, is rebuilt with a log line saying why; it is never
used silently. A timing cache per folder shortens rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.base import BackendUnavailable
from engines.util import atomic_write, file_sha256

log = logging.getLogger("facemonitor.tensorrt")


class TensorRTBuildError(RuntimeError):
    """TensorRT could not parse or build the network."""


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    gpu: str
    compute_capability: str
    tensorrt: str
    precision: str

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True).encode()).hexdigest()[:24]


def stale_reason(sidecar: Path, key: EngineKey) -> str | None:
    """Why the engine described by ``sidecar`` cannot be used for ``key`` (None when it can)."""
    try:
        built = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return "its build record is missing or unreadable"
    for name, want in key.__dict__.items():
        if built.get(name) != want:
            return f"it was built for {name} {built.get(name)!r}, this is {want!r}"
    return None


def require_gpu():
    """(tensorrt, torch) modules, or BackendUnavailable saying what is missing."""
    try:
        import tensorrt as trt
        import torch
    except ImportError as e:
        raise BackendUnavailable(f"TensorRT backends need {e.name} (pip install 'facemonitor[gpu,train]')") from None
    if not torch.cuda.is_available():
        raise BackendUnavailable("TensorRT backends need a CUDA GPU; none is visible")
    return trt, torch


def engine_key(trt, torch, onnx_path: Path, onnx_sha256: str | None, precision: str) -> EngineKey:
    props = torch.cuda.get_device_properties(0)
    return EngineKey(onnx_sha256 or file_sha256(onnx_path), props.name, f"{props.major}.{props.minor}",
                     trt.__version__, precision)


def load_or_build(onnx_path: Path, cache_dir: Path, precision: str, profiles: dict[str, tuple],
                  onnx_sha256: str | None = None, calibrator=None):
    """A deserialised engine for ``onnx_path``: from the cache when its key matches, else built.
    ``profiles`` maps input name → (min, opt, max) shapes of one optimisation profile."""
    trt, torch = require_gpu()
    key = engine_key(trt, torch, onnx_path, onnx_sha256, precision)
    cache_dir.mkdir(parents=True, exist_ok=True)
    engine_path = cache_dir / f"{onnx_path.stem}-{precision}.engine"
    sidecar = engine_path.with_suffix(".json")
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    if engine_path.is_file():
        reason = stale_reason(sidecar, key)
        engine = runtime.deserialize_cuda_engine(engine_path.read_bytes()) if reason is None else None
        if engine is not None:
            return engine
        log.warning("rebuilding TensorRT engine %s: %s", engine_path.name, reason or "it does not deserialise here")
    blob = _build(trt, logger, onnx_path, cache_dir, precision, profiles, calibrator)
    for path, data in ((engine_path, blob), (sidecar, json.dumps(key.__dict__, indent=2).encode())):
        atomic_write(path, data)
    engine = runtime.deserialize_cuda_engine(blob)
    if engine is None:
        raise TensorRTBuildError(f"TensorRT built an engine for {onnx_path.name} that it cannot load")
    return engine


def _build(trt, logger, onnx_path: Path, cache_dir: Path, precision: str, profiles: dict, calibrator) -> bytes:
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTBuildError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
    timing_path = cache_dir / "timing.cache"
    cache = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profiles.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator.tensorrt_calibrator(trt)
        config.set_calibration_profile(profile)
    log.info("building TensorRT %s engine for %s (minutes, once)", precision, onnx_path.name)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise TensorRTBuildError(f"TensorRT could not build an engine from {onnx_path}")
    timing_path.write_bytes(memoryview(config.get_timing_cache().serialize()))
    return bytes(blob)


class EngineRunner:
    """Runs one engine: numpy float32 inputs in, numpy float32 outputs out by name (shapes from the engine)."""

    def __init__(self, engine) -> None:
        import tensorrt as trt
        import torch

        self._torch, self._trt = torch, trt
        self.engine = engine
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        keep = []
        for name, x in feeds.items():
            t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).cuda()
            keep.append(t)
            self.context.set_input_shape(name, tuple(t.shape))
            self.context.set_tensor_address(name, t.data_ptr())
        outs = []
        for name in self.outputs:
            t = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=torch.float32, device="cuda")
            outs.append(t)
            self.context.set_tensor_address(name, t.data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return {name: t.cpu().numpy() for name, t in zip(self.outputs, outs)}
