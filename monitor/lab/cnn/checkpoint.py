"""Checkpoints (PyTorch, ``train`` extra) and their export to ONNX for the engine.

A checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``: no code runs on load) with the
architecture, input frames and size, task, and the weights. Export writes ONNX with a dynamic batch axis
and the facemonitor metadata the clip runners check, and copies the checkpoint's model card beside it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from engines.clip import INPUT_NAME, META_PREFIX, OUTPUT_NAME
from engines.util import atomic_path, file_sha256
from monitor import __version__
from monitor.cnn.card import ModelError, card_path, read_card
from monitor.lab.cnn.archs import ARCHS, TASKS

CHECKPOINT_FORMAT = 1
EXPORT_SIZES = (112, 256)


def _torch():
    try:
        import torch
    except ImportError:
        raise ModelError("this needs PyTorch: pip install 'facemonitor[train]'") from None
    return torch


@dataclass
class Checkpoint:
    arch: str
    frames: int
    size: int
    task: str
    state_dict: dict
    created: str

    def model(self):
        from monitor.lab.cnn.model import build_model  # lazy: torch

        m = build_model(self.arch)
        m.load_state_dict(self.state_dict)
        return m.eval()


def check_spec(arch: str, frames: int, size: int, task: str = "diagnosis") -> None:
    if arch not in ARCHS:
        raise ModelError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    if task not in TASKS:
        raise ModelError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    if not (8 <= frames <= 256):
        raise ModelError(f"frames must be 8–256, got {frames}")
    if not (16 <= size <= 512):
        raise ModelError(f"crop size must be 16–512 pixels, got {size}")


def save_checkpoint(model, path: Path, frames: int, size: int, task: str) -> Path:
    torch = _torch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "arch": model.arch, "frames": frames, "size": size, "task": task,
               "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "facemonitor_version": __version__,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: Path, arch: str | None = None, frames: int | None = None, size: int | None = None) -> Checkpoint:
    """Read and check a checkpoint; ModelError names what does not fit."""
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        ck = Checkpoint(raw["arch"], int(raw["frames"]), int(raw["size"]), raw["task"], raw["state_dict"],
                        raw.get("created", ""))
    except Exception as e:  # a truncated or foreign file raises many kinds of error
        raise ModelError(f"{path} is not a readable facemonitor checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:160] if str(e) else 'no detail'})") from None
    check_spec(ck.arch, ck.frames, ck.size, ck.task)
    for name, want, have in (("architecture", arch, ck.arch), ("frames", frames, ck.frames), ("size", size, ck.size)):
        if want is not None and want != have:
            raise ModelError(f"{path} holds a {ck.arch} model for {ck.frames} frames of {ck.size}×{ck.size}; "
                             f"asked for {name} {want}")
    try:
        ck.model()
    except RuntimeError as e:
        raise ModelError(f"{path}: its weights do not fit a {ck.arch} ({str(e).splitlines()[0][:160]})") from None
    return ck


def export_onnx(out: Path, arch: str, frames: int, size: int, checkpoint: Path | None = None,
                task: str = "diagnosis", opset: int = 17) -> dict:
    """Write the ONNX model (and, from a checkpoint, its card) atomically. Returns what was written."""
    torch = _torch()
    import onnx

    check_spec(arch, frames, size, task)
    out = Path(out)
    if checkpoint is not None:
        ck = load_checkpoint(checkpoint, arch, frames, size)
        card = read_card(checkpoint, expect_sha256=file_sha256(checkpoint)) if card_path(checkpoint).is_file() else None
        model, task, trained, ck_sha = ck.model(), ck.task, True, file_sha256(checkpoint)
    else:
        from monitor.lab.cnn.model import build_model  # lazy: torch

        torch.manual_seed(0)
        model, trained, ck_sha, card = build_model(arch).eval(), False, "", None
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, frames, size, size)
    with atomic_path(out) as tmp:
        with torch.no_grad():
            torch.onnx.export(model, (dummy,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=opset,
                              dynamo=False)
        proto = onnx.load(str(tmp))
        meta = {"arch": arch, "frames": str(frames), "size": str(size), "task": task,
                "trained": "true" if trained else "false", "checkpoint_sha256": ck_sha, "version": __version__}
        for k, v in meta.items():
            proto.metadata_props.add(key=META_PREFIX + k, value=v)
        onnx.save(proto, str(tmp))
    written = {"onnx": str(out), "trained": trained, "card": None}
    if card is not None:
        dest = card_path(out)
        for src, dst in ((card_path(checkpoint), dest), (card_path(checkpoint).with_suffix(".md"), dest.with_suffix(".md"))):
            if src.is_file():
                shutil.copyfile(src, dst)
        written["card"] = str(dest)
    return written
