"""The TensorFlow side of ``facemonitor models export-onnx``, run by the export environment's Python
(``engines.facemesh.models.export_python``), never imported by facemonitor itself.

TensorFlow stays out of facemonitor's own environment because MediaPipe imports it whenever it is
installed, and TensorFlow's bundled libraries (through h5py) make aiortc's SRTP library crash on
import: the app's browser camera would segfault.

Usage: python convert.py WORKDIR. WORKDIR holds ``job.json`` ({"stems": [...], "opset": N}) and,
per stem, ``<stem>.tflite`` and ``<stem>.inputs.npz``; this writes ``<stem>.onnx`` (PRelu
rewritten), ``<stem>.tflite_out.npz`` (the TFLite interpreter's outputs on those inputs, for the
caller's check) and ``result.json`` (versions, rewrite counts).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


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


def tflite_outputs(tf, model_path: Path, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    it = tf.lite.Interpreter(model_path=str(model_path))
    it.allocate_tensors()
    out = {}
    for i, x in enumerate(inputs):
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        for j, d in enumerate(it.get_output_details()):
            out[f"{i}_{j}"] = it.get_tensor(d["index"])
    return out


def main(workdir: Path) -> int:
    import tensorflow as tf
    import tf2onnx

    job = json.loads((workdir / "job.json").read_text())
    rewritten = {}
    for stem in job["stems"]:
        src, dst = workdir / f"{stem}.tflite", workdir / f"{stem}.onnx"
        tf2onnx.convert.from_tflite(str(src), opset=job["opset"], output_path=str(dst))
        rewritten[stem] = rewrite_prelu(dst)
        with np.load(workdir / f"{stem}.inputs.npz") as z:
            inputs = [z[f"x{i}"] for i in range(len(z.files))]
        np.savez(workdir / f"{stem}.tflite_out.npz", **tflite_outputs(tf, src, inputs))
    result = {"tf2onnx": tf2onnx.__version__, "tensorflow": tf.__version__, "prelu_rewritten": rewritten}
    (workdir / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
