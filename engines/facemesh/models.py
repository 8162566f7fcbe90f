"""The three networks of face_landmarker.task as ONNX files: export, the manifest that pins them, and
the checks every backend runs before loading them.

``export_onnx`` converts the TFLite detector, 478-point landmark model and blendshape model with
tf2onnx (the ``export`` extra), checks each against the TFLite interpreter on real inputs from the
sample video, and writes them with the task's geometry metadata and a ``manifest.json`` (SHA-256 of
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

from ..base import BackendUnavailable
from ..clip import file_sha256

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
    from monitor.assets import cache_dir

    return cache_dir() / "onnx" / file_sha256(task_path)[:16]


def _task(task_path: Path | None) -> Path:
    if task_path is not None:
        return Path(task_path)
    from monitor.assets import model_path

    return model_path()


def _shape(shape) -> tuple:
    return tuple(d if isinstance(d, int) else None for d in shape)


def check_io(path: Path, role: str) -> None:
    """Refuse an ONNX file whose inputs or outputs differ from what ``role`` needs."""
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


def load_model_set(folder: Path | None = None, task_path: Path | None = None) -> ModelSet:
    """The exported models, each checked against the manifest's SHA-256 and the expected I/O."""
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
    for role in STEMS:
        check_io(models.path(role), role)
    return models


# -- export ---------------------------------------------------------------------------------------

def _require_export_tools():
    try:
        import tensorflow as tf  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as e:
        raise BackendUnavailable(f"export needs tf2onnx and tensorflow ({e.name} is missing): "
                                 "pip install 'facemonitor[export]'") from None
    return tf, tf2onnx


def _sample_inputs(frames: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Inputs for each network from sample frames: the detector's letterboxed frame, an upright crop
    of the frame's centre turned by a random small angle for the landmark network, and random
    points over the frame for the blendshape network (the TFLite check needs real value ranges,
    not a face)."""
    from . import detector, roi

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


def rewrite_prelu(path: Path) -> int:
    """Rewrite each PRelu with constant per-channel slopes s as Relu(x) + Conv1x1_dw(Relu(Conv1x1_dw(x, −1)), −s)
    — the same products and sums, so the same numbers — because ONNX Runtime's blocked (NCHWc)
    CPU layout has no PRelu and would convert the layout before and after each of them; the
    landmark network runs about twice as fast without those conversions. Returns the count."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    nodes, used, count = [], set(), 0
    for n in model.graph.node:
        if n.op_type != "PRelu" or n.input[1] not in inits:
            nodes.append(n)
            used.update(n.input)
            continue
        slope = numpy_helper.to_array(inits[n.input[1]]).reshape(-1).astype(np.float32)
        c, x, y = slope.size, n.input[0], n.output[0]
        neg = numpy_helper.from_array(np.full((c, 1, 1, 1), -1.0, np.float32), f"{y}/prelu_neg_w")
        slo = numpy_helper.from_array((-slope).reshape(c, 1, 1, 1), f"{y}/prelu_slope_w")
        model.graph.initializer.extend([neg, slo])
        nodes += [
            helper.make_node("Conv", [x, neg.name], [f"{y}/neg"], group=c, kernel_shape=[1, 1]),
            helper.make_node("Relu", [f"{y}/neg"], [f"{y}/relu_neg"]),
            helper.make_node("Conv", [f"{y}/relu_neg", slo.name], [f"{y}/neg_part"], group=c, kernel_shape=[1, 1]),
            helper.make_node("Relu", [x], [f"{y}/pos_part"]),
            helper.make_node("Add", [f"{y}/pos_part", f"{y}/neg_part"], [y]),
        ]
        used.update([x, neg.name, slo.name])
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    keep = [i for i in model.graph.initializer if i.name in used or i.name not in inits]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return count


def _tflite_outputs(tf, model_bytes: bytes, x: np.ndarray) -> list[np.ndarray]:
    it = tf.lite.Interpreter(model_content=model_bytes)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


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
    tf, tf2onnx = _require_export_tools()
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
        files, checks = {}, {}
        for role, stem in STEMS.items():
            src = tmp / f"{stem}.tflite"
            src.write_bytes(members[f"{stem}.tflite"])
            dst = tmp / f"{stem}.onnx"
            tf2onnx.convert.from_tflite(str(src), opset=OPSET, output_path=str(dst))
            src.unlink()
            rewritten = rewrite_prelu(dst)
            check_io(dst, role)
            sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
            worst = 0.0
            for x in inputs[role]:
                ref = _tflite_outputs(tf, members[f"{stem}.tflite"], x)
                got = sess.run(None, {sess.get_inputs()[0].name: x})
                for r, g in zip(ref, got):
                    span = float(np.ptp(r)) or 1.0
                    worst = max(worst, float(np.abs(r - g.reshape(r.shape)).max()) / span)
            if worst > TFLITE_TOLERANCE:
                raise LandmarkModelError(f"the ONNX {role} network differs from TFLite by {worst:.2e} of its output "
                                         f"range (limit {TFLITE_TOLERANCE:.0e}); not exported")
            checks[role] = {"max_abs_diff_over_range": worst, "inputs": len(inputs[role]),
                            "prelu_rewritten": rewritten}
            files[dst.name] = file_sha256(dst)
            log(f"{role}: {dst.name} ({dst.stat().st_size / 1e6:.1f} MB), |ONNX − TFLite| ≤ {worst:.1e} of range")
        (tmp / GEOMETRY_FILE).write_bytes(members[GEOMETRY_FILE])
        files[GEOMETRY_FILE] = file_sha256(tmp / GEOMETRY_FILE)
        manifest = {
            "task_sha256": file_sha256(task), "files": files, "opset": OPSET,
            "tf2onnx": tf2onnx.__version__, "tensorflow": tf.__version__,
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

    from monitor.assets import sample_path

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
