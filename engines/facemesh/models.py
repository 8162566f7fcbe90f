"""The three networks of face_landmarker.task as ONNX files: export, the manifest that pins them, and
the checks every backend runs before loading them.

``export_onnx`` converts the TFLite detector, 478-point landmark model and blendshape model with
tf2onnx, in an environment of its own (``export_python``, ``convert.py``), checks each against the
TFLite interpreter on real inputs from the sample video, and writes them with the task's geometry metadata and a ``manifest.json`` (SHA-256 of
every file, tool versions, check results) into a folder keyed by the task's own SHA-256. The folder
is written under a temporary name and renamed only when whole.

``load_model_set`` refuses a folder whose files do not match their manifest, or whose networks do not
have the inputs and outputs this pipeline was written for.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from engines.assets import cache_dir, model_path, sample_path
from engines.base import BackendUnavailable
from engines.facemesh import detector, roi
from engines.util import file_sha256

# role → file stem inside the task; the ONNX file is <stem>.onnx
STEMS = {"detector": "face_detector", "landmarks": "face_landmarks_detector", "blendshapes": "face_blendshapes"}
GEOMETRY_FILE = "geometry_pipeline_metadata_landmarks.binarypb"
MANIFEST = "manifest.json"
OPSET = 17

# role → (input shape, [output shapes]); None is a free (batch) dimension
EXPECTED_IO = {
    "detector": ((1, 128, 128, 3), [(1, 896, 16), (1, 896, 1)]),
    "landmarks": ((None, 256, 256, 3), [(None, 1, 1, 1434), (None, 1, 1, 1), (None, 1)]),
    "blendshapes": ((1, 146, 2), [(52,)]),
}
TFLITE_TOLERANCE = 2e-3  # max |ONNX − TFLite| relative to the output's range, per output


class LandmarkModelError(BackendUnavailable):
    """An exported landmark model that is missing, altered, or not the network the pipeline expects."""


@dataclass(frozen=True)
class ModelSet:
    folder: Path
    manifest: dict

    def path(self, role: str) -> Path:
        return self.folder / f"{STEMS[role]}.onnx"

    @property
    def geometry(self) -> Path:
        return self.folder / GEOMETRY_FILE

    def sha256(self, role: str) -> str:
        return self.manifest["files"][f"{STEMS[role]}.onnx"]


def default_folder(task_path: Path) -> Path:
    return cache_dir() / "onnx" / file_sha256(task_path)[:16]


def _task(task_path: Path | None) -> Path:
    if task_path is not None:
        return Path(task_path)

    return model_path()


def _shape(shape) -> tuple:
    return tuple(d if isinstance(d, int) else None for d in shape)


def check_io(path: Path, role: str, session=None) -> None:
    """Refuse an ONNX file whose inputs or outputs differ from what ``role`` needs. ``session``: the
    file already loaded in an ONNX Runtime session (a backend checks the session it will run, rather
    than loading the network once more only to look at it)."""
    if session is None:
        import onnxruntime as ort

        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own Fail/InvalidProtobuf types
            raise LandmarkModelError(f"{path} is not a readable ONNX model: {str(e).splitlines()[0][:160]}") from None
    got_in = [_shape(i.shape) for i in session.get_inputs()]
    got_out = [_shape(o.shape) for o in session.get_outputs()]
    want_in, want_out = EXPECTED_IO[role]

    def fits(got: tuple, want: tuple) -> bool:
        return len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want))

    if len(got_in) != 1 or not fits(got_in[0], want_in) or len(got_out) != len(want_out) \
            or not all(fits(g, w) for g, w in zip(got_out, want_out)):
        raise LandmarkModelError(
            f"{path.name} is not the {role} network this pipeline expects: inputs {got_in}, outputs {got_out}; "
            f"expected input {want_in} and outputs {want_out} (re-export with: facemonitor models export-onnx --force)")


def load_model_set(folder: Path | None = None, task_path: Path | None = None, check_networks: bool = True) -> ModelSet:
    """The exported models, each checked against the manifest's SHA-256 and (unless
    ``check_networks`` is False: the caller checks the sessions it loads with ``check_io``) the
    expected I/O."""
    folder = Path(folder) if folder else default_folder(_task(task_path))
    mpath = folder / MANIFEST
    if not mpath.exists():
        raise LandmarkModelError(f"no exported landmark models in {folder}; run: facemonitor models export-onnx")
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise LandmarkModelError(f"{mpath} is not a facemonitor model manifest; run: "
                                 "facemonitor models export-onnx --force") from None
    for name in [f"{s}.onnx" for s in STEMS.values()] + [GEOMETRY_FILE]:
        p = folder / name
        if name not in files or not p.exists():
            raise LandmarkModelError(f"{p} is missing; run: facemonitor models export-onnx --force")
        got = file_sha256(p)
        if got != files[name]:
            raise LandmarkModelError(f"{p} has SHA-256 {got[:12]}…, its manifest says {files[name][:12]}…; the file "
                                     "was altered or damaged (re-export with: facemonitor models export-onnx --force)")
    models = ModelSet(folder, manifest)
    for role in STEMS if check_networks else ():
        check_io(models.path(role), role)
    return models


# -- export ---------------------------------------------------------------------------------------

# the tools the export runs in their own environment (see convert.py for why), pinned to the versions
# whose output the checks were written against
EXPORT_REQUIREMENTS = ("tf2onnx==1.17.0", "tensorflow-cpu==2.21.0")


def export_python(log=print) -> Path:
    """The Python of the export environment: ``FACEMONITOR_EXPORT_PYTHON`` if set, else a virtual
    environment in the cache, created with ``EXPORT_REQUIREMENTS`` on first use."""
    import hashlib
    import os
    import subprocess
    import sys

    given = os.environ.get("FACEMONITOR_EXPORT_PYTHON")
    if given:
        if not Path(given).is_file():
            raise BackendUnavailable(f"FACEMONITOR_EXPORT_PYTHON={given} does not exist")
        return Path(given)
    spec = " ".join(EXPORT_REQUIREMENTS)
    env = cache_dir() / f"export-env-{hashlib.sha256(spec.encode()).hexdigest()[:12]}"
    python, stamp = env / "bin" / "python", env / ".complete"
    if stamp.is_file() and python.is_file():
        return python
    log(f"preparing the export tools in {env} (once: {spec}, several hundred MB)")
    shutil.rmtree(env, ignore_errors=True)
    steps = ([sys.executable, "-m", "venv", str(env)],
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *EXPORT_REQUIREMENTS])
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise BackendUnavailable(f"could not prepare the export tools in {env}: {last}")
    stamp.write_text(spec)
    return python


def _convert(python: Path, workdir: Path) -> dict:
    """Run convert.py in the export environment over ``workdir``; its result.json."""
    import subprocess

    script = Path(__file__).with_name("convert.py")
    done = subprocess.run([str(python), str(script), str(workdir)], capture_output=True, text=True)
    if done.returncode != 0:
        last = [ln for ln in done.stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
        raise LandmarkModelError(f"the TFLite → ONNX conversion failed: {last[0][:200]}")
    return json.loads((workdir / "result.json").read_text())


def _sample_inputs(frames: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Inputs for each network from sample frames: the detector's letterboxed frame, an upright crop
    of the frame's centre turned by a random small angle for the landmark network, and random
    points over the frame for the blendshape network (the TFLite check needs real value ranges,
    not a face)."""

    out: dict[str, list[np.ndarray]] = {"detector": [], "landmarks": [], "blendshapes": []}
    rng = np.random.default_rng(0)
    for rgb in frames:
        x, _ = detector.letterbox(rgb)
        out["detector"].append(x[None])
        h, w = rgb.shape[:2]
        side = 0.6 * min(h, w)
        rect = roi.RotatedRect(w / 2, h / 2, side, side, float(rng.uniform(-0.2, 0.2)))
        out["landmarks"].append(roi.crop(rgb, rect, 256)[None].astype(np.float32) / 255.0)
        pts = rng.uniform(0.3, 0.7, (146, 2)) * (w, h)
        out["blendshapes"].append(pts[None].astype(np.float32))
    return out


def export_onnx(task_path: Path | None = None, folder: Path | None = None, force: bool = False,
                frames: list[np.ndarray] | None = None, log=print) -> ModelSet:
    """Convert the task's three networks to ONNX into ``folder`` (default: beside the cached model,
    keyed by its hash), check them against TFLite on ``frames``, and return the loaded set. An
    existing whole export is reused unless ``force``."""
    task = _task(task_path)
    folder = Path(folder) if folder else default_folder(task)
    if folder.exists() and not force:
        try:
            return load_model_set(folder)
        except LandmarkModelError as e:
            log(f"existing export is unusable ({e}); exporting again")
    python = export_python(log)
    import onnxruntime as ort

    if frames is None:
        frames = sample_frames()
    try:
        bundle = zipfile.ZipFile(task)
        members = {n: bundle.read(n) for n in [f"{s}.tflite" for s in STEMS.values()] + [GEOMETRY_FILE]}
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise LandmarkModelError(f"{task} is not a face landmarker bundle: {e}") from None
    inputs = _sample_inputs(frames)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        work = tmp / "work"
        work.mkdir()
        for role, stem in STEMS.items():
            (work / f"{stem}.tflite").write_bytes(members[f"{stem}.tflite"])
            np.savez(work / f"{stem}.inputs.npz", **{f"x{i}": x for i, x in enumerate(inputs[role])})
        (work / "job.json").write_text(json.dumps({"stems": list(STEMS.values()), "opset": OPSET}))
        converted = _convert(python, work)
        files, checks = {}, {}
        for role, stem in STEMS.items():
            dst = tmp / f"{stem}.onnx"
            (work / dst.name).rename(dst)
            check_io(dst, role)
            sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
            worst = 0.0
            with np.load(work / f"{stem}.tflite_out.npz") as refs:
                for i, x in enumerate(inputs[role]):
                    got = sess.run(None, {sess.get_inputs()[0].name: x})
                    for j, g in enumerate(got):
                        r = refs[f"{i}_{j}"]
                        span = float(np.ptp(r)) or 1.0
                        worst = max(worst, float(np.abs(r - g.reshape(r.shape)).max()) / span)
            if worst > TFLITE_TOLERANCE:
                raise LandmarkModelError(f"the ONNX {role} network differs from TFLite by {worst:.2e} of its output "
                                         f"range (limit {TFLITE_TOLERANCE:.0e}); not exported")
            checks[role] = {"max_abs_diff_over_range": worst, "inputs": len(inputs[role]),
                            "prelu_rewritten": converted["prelu_rewritten"][stem]}
            files[dst.name] = file_sha256(dst)
            log(f"{role}: {dst.name} ({dst.stat().st_size / 1e6:.1f} MB), |ONNX − TFLite| ≤ {worst:.1e} of range")
        shutil.rmtree(work)
        (tmp / GEOMETRY_FILE).write_bytes(members[GEOMETRY_FILE])
        files[GEOMETRY_FILE] = file_sha256(tmp / GEOMETRY_FILE)
        manifest = {
            "task_sha256": file_sha256(task), "files": files, "opset": OPSET,
            "tf2onnx": converted["tf2onnx"], "tensorflow": converted["tensorflow"],
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "tflite_check": checks,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_model_set(folder)


def sample_frames(count: int = 4) -> list[np.ndarray]:
    """RGB frames spread over the sample video."""
    import cv2

    cap = cv2.VideoCapture(str(sample_path()))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
    out = []
    for k in range(count):
        cap.set(cv2.CAP_PROP_POS_FRAMES, k * max(1, total // count))
        ok, bgr = cap.read()
        if ok:
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not out:
        raise LandmarkModelError("could not read frames from the sample video for the export check")
    return out
