"""INT8 calibration data for the 3D-CNN under TensorRT: batches of real face clips from a dataset built
from logged sessions (``facemonitor cnn dataset``), and a TensorRT entropy calibrator fed by them.

``CropCalibrationData`` is plain numpy (tested everywhere); ``tensorrt_calibrator`` builds the
``trt.IInt8EntropyCalibrator2`` subclass only when TensorRT is present, with its cache beside the model
so a second build reuses the scales.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np


class CropCalibrationData:
    """Normalised clip batches (batch, 3, frames, size, size) float32, ``max_batches`` at most, drawn
    evenly across subjects so no one person sets the scales."""

    def __init__(self, dataset: Path, batch: int = 4, max_batches: int = 32, seed: int = 0,
                 cache: Path | None = None) -> None:
        from monitor.cnn.dataset import Dataset

        self.ds = Dataset.open(dataset)
        self.batch, self.max_batches = batch, max_batches
        self.cache = Path(cache) if cache else Path(dataset) / "int8.calibration.cache"
        by_subject: dict[str, list[int]] = {}
        for i, r in enumerate(self.ds.index):
            by_subject.setdefault(r["subject"], []).append(i)
        rng = np.random.default_rng(seed)
        for v in by_subject.values():
            rng.shuffle(v)
        order = []
        while any(by_subject.values()):  # round robin over subjects
            for v in by_subject.values():
                if v:
                    order.append(v.pop())
        self.order = order[: batch * max_batches]

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return (self.batch, 3, self.ds.frames, self.ds.size, self.ds.size)

    def __len__(self) -> int:
        return len(self.order) // self.batch

    def __iter__(self) -> Iterator[np.ndarray]:
        from engines.clip import prepare_clips

        for i in range(len(self)):
            sel = self.order[i * self.batch:(i + 1) * self.batch]
            yield prepare_clips(np.stack([self.ds.clip(j) for j in sel]))

    def tensorrt_calibrator(self, trt):
        """A ``trt.IInt8EntropyCalibrator2`` over these batches (device buffers via PyTorch CUDA)."""
        import torch

        data = self

        class _Calibrator(trt.IInt8EntropyCalibrator2):
            def __init__(self) -> None:
                super().__init__()
                self._it = iter(data)
                self._buf = None

            def get_batch_size(self) -> int:
                return data.batch

            def get_batch(self, names):
                try:
                    x = next(self._it)
                except StopIteration:
                    return None
                self._buf = torch.from_numpy(x).cuda()
                return [int(self._buf.data_ptr())]

            def read_calibration_cache(self):
                return data.cache.read_bytes() if data.cache.is_file() else None

            def write_calibration_cache(self, cache) -> None:
                data.cache.write_bytes(bytes(cache))

        return _Calibrator()
