"""The stages of the GPU check (``monitor.lab.gpu_check``), each run in a process of its own: ``python -m
monitor.lab.gpu_check --stage NAME`` calls one of these and prints the figures it returns as JSON.

Written against the documented APIs of TensorRT 10, onnxruntime-gpu and PyTorch CUDA; it has not yet run
on a GPU (docs/performance.md). A stage raises when it cannot produce its figures at all; a backend that
fails inside a stage is recorded in its row and the others still run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from engines import create_runner
from engines.clip import OrtClipRunner, TensorRTClipRunner, prepare_clips

ROOT = Path(__file__).resolve().parents[2]
STREAM_COUNTS = (1, 8, 32, 64)
CLIP_BATCHES = (1, 16)
LANDMARK_GPU_BACKENDS = ("onnx-cuda", "tensorrt")
# what the check imports besides what a CUDA machine's Python usually has (numpy, torch, onnx)
CHECK_DEPENDENCIES = ("mediapipe", "numba", "pyzmq", "pyarrow", "platformdirs", "pooch", "tqdm")
CLIP_ARCH, CLIP_FRAMES, CLIP_SIZE = "r3d18", 64, 112
STREAM_SECONDS = 3.0


def _short(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"


def _python_json(code: str) -> object:
    """What a fresh interpreter prints as JSON (after pip changed the installed packages)."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": (r.stderr.strip().splitlines() or ["no output"])[-1][:300]}


PROBE = """import json
out = {}
try:
    import onnxruntime as o; out['onnxruntime'] = o.__version__; out['providers'] = o.get_available_providers()
except Exception as e: out['onnxruntime'] = repr(e)
try:
    import tensorrt as t; out['tensorrt'] = t.__version__
except Exception as e: out['tensorrt'] = repr(e)
try:
    import torch; out['torch'] = torch.__version__; out['torch_cuda'] = torch.cuda.is_available()
except Exception as e: out['torch'] = repr(e)
print(json.dumps(out))"""


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--retries", "1",
                           "--timeout", "20", *args], capture_output=True, text=True)


def install(work: Path) -> dict:
    """The GPU extra and the check's dependencies. onnxruntime and onnxruntime-gpu install the same
    module: where the CPU wheel hides the CUDA provider, it is removed and the GPU wheel reinstalled."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = [d for d in project["dependencies"] if d.split(">")[0].split("=")[0].split("<")[0] in CHECK_DEPENDENCIES]
    deps += project["optional-dependencies"]["gpu"]
    r = _pip(*deps)
    figures = {"requested": deps, "pip_exit": r.returncode}
    if r.returncode:
        figures["pip_error"] = "\n".join(r.stderr.strip().splitlines()[-3:])[-600:]
    probe = _python_json(PROBE)
    if "CUDAExecutionProvider" not in probe.get("providers", []):
        have = _python_json("import json, importlib.metadata as m\nout = {}\nfor n in ('onnxruntime', 'onnxruntime-gpu'):\n"
                            "    try: out[n] = m.version(n)\n    except m.PackageNotFoundError: pass\nprint(json.dumps(out))")
        if "onnxruntime-gpu" in have and "onnxruntime" in have:
            subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "onnxruntime"], capture_output=True)
            figures["reinstalled"] = _pip("--force-reinstall", "--no-deps", f"onnxruntime-gpu=={have['onnxruntime-gpu']}").returncode == 0
            probe = _python_json(PROBE)
    figures.update(probe)
    print(json.dumps(figures))  # what was found, also when the stage then fails
    if "CUDAExecutionProvider" not in figures.get("providers", []) and not str(figures.get("tensorrt", "")).startswith("1"):
        raise SystemExit("neither ONNX Runtime's CUDA provider nor TensorRT is usable here")
    return figures


def assets(work: Path) -> dict:
    from engines import assets as a  # lazy: platformdirs, which the install stage may only now have installed

    return {"model": str(a.model_path(progress=False)), "sample": str(a.sample_path(progress=False))}


def _preload_cuda() -> None:
    """onnxruntime-gpu ≥ 1.21 can load CUDA and cuDNN from the nvidia-* pip packages (as PyTorch has them)."""
    try:
        import onnxruntime as ort

        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()
    except Exception:  # an older ORT, or the libraries are found the usual way
        pass


def clip_model(work: Path) -> Path:
    """The r3d18 clip model with untrained weights (seed 0), exported once into ``work``."""
    from monitor.lab.cnn.checkpoint import export_onnx  # lazy: torch

    model = work / f"{CLIP_ARCH}-{CLIP_FRAMES}x{CLIP_SIZE}.onnx"
    if not model.is_file():
        export_onnx(model, CLIP_ARCH, CLIP_FRAMES, CLIP_SIZE)
    return model


def tensorrt_build(work: Path) -> dict:
    """Build (or find in the cache) the TensorRT engines: the landmark networks and the clip model."""
    rows = []
    t0 = time.monotonic()
    try:
        with create_runner("tensorrt") as r:
            r.infer(np.zeros((360, 640, 3), np.uint8), 0)
        rows.append({"engine": "landmarks (detector, landmarks, blendshapes) fp16", "seconds": round(time.monotonic() - t0, 1)})
    except Exception as e:
        rows.append({"engine": "landmarks fp16", "error": _short(e)})
    t0 = time.monotonic()
    try:
        with TensorRTClipRunner(clip_model(work), "fp16", cache_dir=work / "trt-cache"):
            pass
        rows.append({"engine": f"clip {CLIP_ARCH} {CLIP_FRAMES}x{CLIP_SIZE} fp16, batch 1-16",
                     "seconds": round(time.monotonic() - t0, 1)})
    except Exception as e:
        rows.append({"engine": "clip fp16", "error": _short(e)})
    if all("error" in r for r in rows):
        print(json.dumps({"rows": rows}))
        raise SystemExit("no TensorRT engine could be built")
    return {"rows": rows}


def _time_batches(infer, clips: np.ndarray) -> dict:
    out = {}
    for b in CLIP_BATCHES:
        x = clips[:b]
        for _ in range(2):
            infer(x)  # warm-up: CUDA context, kernels' autotuning
        n = 20 if b == 1 else 5
        t0 = time.perf_counter()
        for _ in range(n):
            infer(x)
        s = time.perf_counter() - t0
        out[f"batch{b}_clips_per_s"] = round(b * n / s, 2)
        out[f"batch{b}_ms"] = round(s / n * 1e3, 2)
    return out


def _torch_infer(half: bool):
    import torch

    from monitor.lab.cnn.model import build_model  # lazy: torch

    torch.manual_seed(0)  # the same weights as the exported model (export_onnx seeds 0 too)
    model = build_model(CLIP_ARCH).eval().cuda()
    if half:
        model = model.half()

    def infer(clips: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(prepare_clips(clips)).cuda()
        with torch.no_grad():
            logits = model(x.half() if half else x).float()
        return torch.softmax(logits, 1)[:, 1].cpu().numpy()

    return infer


def clips(work: Path) -> dict:
    """Clips per second at batch 1 and 16 per backend (uint8 clips in, probabilities out), and the largest
    difference of the probabilities from ONNX Runtime on the CPU on two clips."""
    _preload_cuda()
    model = clip_model(work)
    data = np.random.default_rng(0).integers(0, 256, (max(CLIP_BATCHES), CLIP_FRAMES, CLIP_SIZE, CLIP_SIZE, 3),
                                             dtype=np.uint8)
    with OrtClipRunner(model, "cpu", threads=0) as cpu:
        ref = cpu.infer(data[:2])
    backends = {"pytorch-cuda-fp32": lambda: _torch_infer(False), "pytorch-cuda-fp16": lambda: _torch_infer(True),
                "onnxruntime-cuda": lambda: OrtClipRunner(model, "cuda").activate().infer,
                "tensorrt-fp16": lambda: _trt_clip(model, work)}
    rows = []
    for name, make in backends.items():
        row = {"backend": name}
        try:
            infer = make()
            row["max_p_diff_vs_cpu"] = round(float(np.abs(infer(data[:2]) - ref).max()), 5)
            row.update(_time_batches(infer, data))
        except Exception as e:
            row["error"] = _short(e)
        rows.append(row)
    if all("error" in r for r in rows):
        print(json.dumps({"rows": rows}))
        raise SystemExit("no GPU backend ran the clip model")
    return {"rows": rows, "model": f"{CLIP_ARCH} {CLIP_FRAMES}x{CLIP_SIZE}, untrained (timing only)"}


def _trt_clip(model: Path, work: Path):
    cache = work / "trt-cache"
    if not any(cache.glob(f"{model.stem}-fp16.engine")):
        raise RuntimeError("no cached engine (the tensorrt-build stage did not build it)")
    return TensorRTClipRunner(model, "fp16", cache_dir=cache).activate().infer


def _sample_frames() -> tuple[list, float]:
    from engines import assets as a  # lazy: platformdirs (installed by the install stage)
    from monitor.capture.sources import read_rgb_frames  # lazy: cv2 (installed by the install stage)

    return read_rgb_frames(a.sample_path(progress=False))


def parity(work: Path) -> dict:
    """Each GPU landmark backend against ONNX Runtime CPU (``onnx``) on the sample video."""
    from monitor.lab.parity import compare_backends  # lazy: mediapipe, numba (installed by the install stage)

    _preload_cuda()
    frames, fps = _sample_frames()
    rows = []
    for backend in LANDMARK_GPU_BACKENDS:
        try:
            rep = compare_backends(frames, fps, candidate=backend, reference="onnx")
            rows.append({"backend": backend, "passes": rep.passes(), **rep.as_dict()})
        except Exception as e:
            rows.append({"backend": backend, "error": _short(e)})
    if all("error" in r for r in rows):
        print(json.dumps({"rows": rows}))
        raise SystemExit("no GPU landmark backend ran")
    return {"rows": rows, "reference": "onnx (ONNX Runtime CPU)"}


def streams(work: Path) -> dict:
    """Per-stream fps and latency with 1, 8, 32 and 64 streams on one engine of each GPU backend. Rows are
    printed as they come, so that a stage stopped at its timeout still reports the runs it finished."""
    from monitor.lab.bench import streams_run  # lazy: zmq, mediapipe, pyarrow (installed by the install stage)

    _preload_cuda()
    frames, _ = _sample_frames()
    rows = []
    for backend in LANDMARK_GPU_BACKENDS:
        for n in STREAM_COUNTS:
            try:
                rows.append(streams_run(backend, frames, n, STREAM_SECONDS))
            except Exception as e:
                rows.append({"backend": backend, "streams": n, "error": _short(e)})
                break  # more streams of a backend that failed would fail the same way
            print(json.dumps({"rows": rows}), flush=True)
    if all("error" in r for r in rows):
        raise SystemExit("no GPU landmark backend served streams")
    return {"rows": rows, "seconds_per_run": STREAM_SECONDS}


STAGES = {"install": install, "assets": assets, "tensorrt-build": tensorrt_build, "clips": clips,
          "parity": parity, "streams": streams}
