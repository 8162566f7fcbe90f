"""The 3D-CNN beside the landmark path in the engine process.

``ClipEngine`` keeps one :class:`ClipWindow` per stream, crops each frame with a face, and runs the clip
model every ``stride`` frames. Two modes:

- ``live``: clips go to a process of their own (``monitor.cnn.worker``: one ONNX Runtime thread, no
  spinning, ``SCHED_IDLE`` / nice +19, its own GIL), fed by one thread here that hands it the newest clip
  of each stream and drops older ones it had no time for (counted as skipped). The landmark path never
  waits for the CNN; the CNN's actual rate is reported (clips/s, skipped). A clip process that fails
  or dies costs clips (counted as skipped, logged), never frames.
- ``all``: every due clip runs at once in the frame path (offline analysis: nothing skipped, slower).

Outputs are handed back per stream with the frame ids the clip spans.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from engines.base import BackendUnavailable
from engines.clip import ClipModelError, ClipRunner, create_clip_runner
from monitor.cnn.card import ModelCard, ModelError, read_card
from monitor.cnn.crops import align_crop
from monitor.cnn.modes import CnnMode
from monitor.cnn.window import Clip, ClipWindow
from monitor.cnn.worker import ClipProcess, WorkerError

log = logging.getLogger("facemonitor.cnn")


@dataclass(frozen=True, slots=True)
class ClipOutput:
    first_frame: int
    last_frame: int
    p: float | None  # probability of class 1; None when the model is untrained (benchmarks only)
    ms: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClipStats:
    clips: int = 0
    skipped: int = 0
    infer_ms: list = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def report(self) -> dict:
        span = time.monotonic() - self.started
        ms = self.infer_ms
        return {"clips": self.clips, "skipped": self.skipped,
                "clips_per_s": round(self.clips / span, 3) if span > 0 else 0.0,
                "infer_ms_p50": round(float(np.percentile(ms, 50)), 1) if ms else None,
                "infer_ms_p95": round(float(np.percentile(ms, 95)), 1) if ms else None}


class ClipEngine:
    def __init__(self, runner: ClipRunner, stride: int = 32, mode: CnnMode = CnnMode.LIVE, report_p: bool = True,
                 nice: int = 19) -> None:
        if mode not in CnnMode.__members__.values():
            raise ValueError(f"cnn mode must be one of {', '.join(CnnMode)}, got {mode!r}")
        mode = CnnMode(mode)
        self.runner = runner
        self.info = runner.info
        self.stride, self.mode, self.report_p, self.nice = stride, mode, report_p, nice
        self.stats = ClipStats()
        self._windows: dict = {}
        self._done: dict = {}
        self._pending: dict = {}  # stream → newest due clip not yet run (live mode)
        self._cv = threading.Condition()
        self._running = True
        self._busy = None  # the stream whose clip the worker is running
        self._thread = None
        self.worker: ClipProcess | None = None
        if mode == CnnMode.LIVE:
            try:
                self.worker = ClipProcess(runner.path, runner.name, getattr(runner, "threads", 1), nice)
            except WorkerError as e:
                raise ModelError(str(e)) from None
            runner.deactivate()  # the clip process holds the model; this one keeps only its info
            self._thread = threading.Thread(target=self._loop, name="clip-feeder", daemon=True)
            self._thread.start()

    # -- the frame path ---------------------------------------------------------------------------
    def frame(self, stream, frame_id: int, rgb: np.ndarray, landmarks) -> list[dict]:
        """Feed one frame (landmarks None: no face, the window restarts); returns finished outputs."""
        window = self._windows.get(stream)
        if window is None:
            window = self._windows[stream] = ClipWindow(self.info.frames, self.info.size, self.stride)
        if landmarks is None:
            window.reset()
        else:
            window.push(align_crop(rgb, landmarks, self.info.size), frame_id)
            if window.due():
                clip = window.clip()
                if self.mode == CnnMode.ALL:
                    try:
                        self._put_done(stream, self._run(clip))
                    except Exception:  # the frame's landmarks still go back; the engine log keeps the reason
                        log.exception("clip inference failed")
                        self.stats.skipped += 1
                else:
                    with self._cv:
                        if stream in self._pending:
                            self.stats.skipped += 1
                        self._pending[stream] = clip
                        self._cv.notify()
        return self.take(stream)

    def take(self, stream) -> list[dict]:
        with self._cv:
            return [o.as_dict() for o in self._done.pop(stream, [])]

    def end_stream(self, stream, wait_s: float = 10.0) -> list[dict]:
        """The stream ended: wait (bounded) for its pending clip, then hand back what is left."""
        deadline = time.monotonic() + wait_s
        with self._cv:
            while (stream in self._pending or self._busy == stream) and time.monotonic() < deadline:
                self._cv.wait(0.05)
            if self._pending.pop(stream, None) is not None:
                self.stats.skipped += 1
        self._windows.pop(stream, None)
        return self.take(stream)

    def close(self) -> None:
        with self._cv:
            self._running = False
            self._cv.notify_all()
        if self.worker is not None:
            self.worker.close()  # first: a feeder waiting on a clip gets its answer or an error
        if self._thread is not None:
            self._thread.join(10)
        self.runner.deactivate()

    # -- inference --------------------------------------------------------------------------------
    def _run(self, clip: Clip) -> ClipOutput:
        if self.worker is not None:
            p, ms = self.worker.infer(clip.frames)
        else:
            t0 = time.perf_counter()
            p = float(self.runner.infer(clip.frames)[0])
            ms = (time.perf_counter() - t0) * 1e3
        self.stats.clips += 1
        self.stats.infer_ms.append(ms)
        return ClipOutput(clip.first_frame, clip.last_frame, round(p, 5) if self.report_p else None, round(ms, 1))

    def _put_done(self, stream, out: ClipOutput) -> None:
        with self._cv:
            self._done.setdefault(stream, []).append(out)

    def _loop(self) -> None:
        """Feed the clip process the newest due clip; this thread only waits (on the pipe, without the GIL)."""
        while True:
            with self._cv:
                while self._running and not self._pending:
                    self._cv.wait()
                if not self._running:
                    return
                stream, clip = next(iter(self._pending.items()))
                del self._pending[stream]
                self._busy = stream
            out = None
            if self.worker.alive:
                try:
                    out = self._run(clip)
                except Exception as e:  # a failing clip must not end the feeder; the engine log keeps the reason
                    log.error("clip inference failed: %s", e)
            with self._cv:
                self._busy = None
                if out is None:
                    self.stats.skipped += 1
                else:
                    self._done.setdefault(stream, []).append(out)
                self._cv.notify_all()


def load_clip_model(path, backend: str = "onnxruntime-cpu", threads: int = 1,
                    allow_untrained: bool = False) -> tuple[ClipRunner, ModelCard | None]:
    """An active clip runner and the model's card. A model without a card, or with untrained weights,
    is refused unless ``allow_untrained`` (benchmarks, whose outputs are never reported)."""
    runner = create_clip_runner(path, backend, threads)
    try:
        runner.activate()
    except (ClipModelError, BackendUnavailable) as e:
        raise ModelError(str(e)) from None
    if allow_untrained:
        return runner, None
    if not runner.info.trained:
        runner.deactivate()
        raise ModelError(f"{path} holds untrained weights (exported without --checkpoint); "
                         "it is for benchmarks only and its output is never shown")
    try:
        card = read_card(path, expect_sha256=runner.info.checkpoint_sha256)
    except ModelError:
        runner.deactivate()
        raise
    if (card.arch, card.frames, card.size, card.task) != (runner.info.arch, runner.info.frames, runner.info.size,
                                                          runner.info.task):
        runner.deactivate()
        raise ModelError(f"the model card beside {path} describes a {card.arch} {card.task} model for "
                         f"{card.frames}×{card.size}, not this {runner.info.arch} {runner.info.task} model")
    return runner, card
