"""The engine process: receives frames over ZeroMQ, runs the landmark model and the measure kernels,
and replies with one result per frame.

Sockets: a ROUTER bound at ``bind`` for clients (DEALER) — each message is ``[header, pixels]`` (see
``monitor.wire``) and every reply goes back to its sender; and a PULL ``control`` socket watched by the
same poller, on which ``b"STOP"`` ends the process. Malformed messages are rejected, counted and
answered with a ``reject`` reply; the engine keeps running.
"""

from __future__ import annotations

import logging
import signal
import time
import uuid
from dataclasses import dataclass, field

from . import quiet  # noqa: F401
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import zmq  # noqa: E402

from calibration.scale import DEFAULT_IRIS_MM, IrisScale  # noqa: E402
from engines import LandmarkRunner, create_runner  # noqa: E402

from . import __version__, wire  # noqa: E402
from .errors import EngineError  # noqa: E402
from .proc import pid_alive  # noqa: E402
from .measures import compute_measures, nan_to_none  # noqa: E402

log = logging.getLogger("facemonitor.engine")

RCVHWM = 64  # messages; clients also keep a credit window, so this bounds memory twice


@dataclass
class StreamState:
    runner: LandmarkRunner
    scale: IrisScale
    last_ts_ms: int = -1
    frames: int = 0
    frames_with_face: int = 0


@dataclass
class CnnOptions:
    """The 3D-CNN beside the landmarks (see monitor/cnn/live.py)."""

    model: str
    stride: int = 32
    mode: str = "live"
    backend: str = "onnxruntime-cpu"
    threads: int = 1
    benchmark: bool = False  # an untrained model for timing: outputs carry no probability

    def args(self) -> list[str]:
        extra = ["--cnn", self.model, "--cnn-stride", str(self.stride), "--cnn-mode", self.mode,
                 "--cnn-backend", self.backend, "--cnn-threads", str(self.threads)]
        return extra + (["--cnn-benchmark"] if self.benchmark else [])


@dataclass
class EngineStats:
    frames: int = 0
    rejected: int = 0
    reject_reasons: dict = field(default_factory=dict)


def to_rgb(image: np.ndarray, fmt: wire.PixelFormat) -> np.ndarray:
    if fmt == wire.PixelFormat.GRAY8:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if fmt == wire.PixelFormat.BGRA32:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class EngineService:
    def __init__(self, bind: str, control: str | None = None, backend: str = "mediapipe",
                 iris_mm: float = DEFAULT_IRIS_MM, ctx: zmq.Context | None = None, parent_pid: int | None = None,
                 cnn: CnnOptions | None = None, **runner_options) -> None:
        self.bind = bind
        self.parent_pid = parent_pid  # stop when this process is gone (a local engine's client)
        self.control = control
        self.backend = backend
        self.iris_mm = iris_mm
        self.runner_options = runner_options
        self.ctx = ctx or zmq.Context.instance()
        self.stats = EngineStats()
        self.streams: dict[uuid.UUID, StreamState] = {}
        self._spare: LandmarkRunner | None = None
        self.cnn_options = cnn
        self.clips = None  # monitor.cnn.live.ClipEngine once loaded
        self.card = None
        self._running = False
        self._data: zmq.Socket | None = None
        self._control: zmq.Socket | None = None

    # -- runners --------------------------------------------------------------------------------
    def _new_runner(self) -> LandmarkRunner:
        if self._spare is not None:
            runner, self._spare = self._spare, None
            return runner
        return create_runner(self.backend, **self.runner_options).activate()

    def load_cnn(self) -> None:
        """Load the clip model named in the options (ModelError when it cannot be used)."""
        o = self.cnn_options
        if o is None or self.clips is not None:
            return
        from .cnn.live import ClipEngine, load_clip_model

        runner, self.card = load_clip_model(o.model, o.backend, o.threads, allow_untrained=o.benchmark)
        self.clips = ClipEngine(runner, o.stride, o.mode, report_p=not o.benchmark)

    def cnn_info(self) -> dict | None:
        if self.clips is None:
            return None
        info = self.clips.info
        return {"arch": info.arch, "frames": info.frames, "size": info.size, "task": info.task,
                "mode": self.clips.mode, "stride": self.clips.stride, "backend": self.clips.runner.name,
                "card": self.card.as_dict() if self.card else None, "stats": self.clips.stats.report()}

    def warm_up(self) -> None:
        """Load the model (and compile the kernels) before the first client arrives."""
        self.load_cnn()
        self._spare = create_runner(self.backend, **self.runner_options).activate()
        blank = np.zeros((64, 64, 3), np.uint8)
        self._spare.infer(blank, 0)
        self._spare.deactivate()
        self._spare.activate()  # VIDEO mode timestamps start again
        from .measures import compile_kernels

        compile_kernels()

    def _stream(self, sid: uuid.UUID) -> StreamState:
        state = self.streams.get(sid)
        if state is None:
            state = StreamState(self._new_runner(), IrisScale(iris_mm=self.iris_mm))
            self.streams[sid] = state
        return state

    def _end_stream(self, sid: uuid.UUID) -> StreamState | None:
        state = self.streams.pop(sid, None)
        if state is not None:
            if self._spare is None:
                state.runner.deactivate()
                self._spare = state.runner.activate()
            else:
                state.runner.deactivate()
        return state

    # -- messages -------------------------------------------------------------------------------
    def _reject(self, reason: str) -> wire.Reply:
        self.stats.rejected += 1
        key = reason.split(" ")[0] if reason else "?"
        self.stats.reject_reasons[key] = self.stats.reject_reasons.get(key, 0) + 1
        log.warning("rejected message: %s", reason)
        return wire.Reply({"kind": "reject", "reason": reason, "rejected_total": self.stats.rejected})

    def handle(self, parts: list) -> wire.Reply:
        t_recv = time.monotonic_ns()
        try:
            header, pixels = wire.decode_frame(parts)
        except wire.WireError as e:
            return self._reject(str(e))
        if header.kind == wire.Kind.PING:
            return wire.Reply({"kind": "pong", "ping": str(header.stream), "version": __version__,
                               "backend": self.backend, "frames": self.stats.frames, "rejected": self.stats.rejected,
                               "streams": len(self.streams), "cnn": self.cnn_info()})
        if header.kind == wire.Kind.END:
            state = self._end_stream(header.stream)
            cnn = self.clips.end_stream(header.stream) if self.clips is not None else []
            return wire.Reply({"kind": "end", "stream": str(header.stream), "cnn": cnn,
                               "cnn_stats": self.clips.stats.report() if self.clips is not None else None,
                               "frames": state.frames if state else 0,
                               "frames_with_face": state.frames_with_face if state else 0,
                               "rejected": self.stats.rejected})
        return self._frame(header, pixels, t_recv)

    def _frame(self, header: wire.FrameHeader, pixels: np.ndarray, t_recv: int) -> wire.Reply:
        state = self._stream(header.stream)
        ts_ms = max(header.t_media_us // 1000, state.last_ts_ms + 1)
        state.last_ts_ms = ts_ms
        t0 = time.perf_counter()
        rgb = to_rgb(pixels, header.pixel_format)
        result = state.runner.infer(rgb, ts_ms)
        t1 = time.perf_counter()
        measures = compute_measures(result, state.scale, rgb)
        t2 = time.perf_counter()
        cnn = self.clips.frame(header.stream, header.frame_id, rgb, result.landmarks_px) if self.clips else []
        t3 = time.perf_counter()
        state.frames += 1
        self.stats.frames += 1
        state.frames_with_face += result.face
        meta = {
            "kind": "result", "stream": str(header.stream), "frame": header.frame_id,
            "t_capture_ns": header.t_capture_ns, "t_media_us": header.t_media_us, "step": header.step,
            "dropped_total": header.dropped_total, "face": result.face, "faces": result.faces,
            "height": header.height, "width": header.width,
            "measures": nan_to_none(measures), "cnn": cnn,
            "timing": {"t_recv_ns": t_recv, "landmarks_ms": (t1 - t0) * 1e3, "kernels_ms": (t2 - t1) * 1e3,
                       "cnn_ms": (t3 - t2) * 1e3,
                       "t_reply_ns": time.monotonic_ns()},
        }
        return wire.Reply(meta, result.landmarks_px, result.blendshapes, result.matrix)

    # -- loop -----------------------------------------------------------------------------------
    def stop(self) -> None:
        self._running = False

    def open(self) -> None:
        """Bind the sockets (done first, so a bad endpoint fails before the model loads)."""
        if self._data is not None:
            return
        data = self.ctx.socket(zmq.ROUTER)
        data.setsockopt(zmq.LINGER, 0)
        data.setsockopt(zmq.RCVHWM, RCVHWM)
        data.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES)
        control = None
        try:
            data.bind(self.bind)
            if self.control:
                control = self.ctx.socket(zmq.PULL)
                control.setsockopt(zmq.LINGER, 0)
                control.setsockopt(zmq.MAXMSGSIZE, 1024)
                control.bind(self.control)
        except zmq.ZMQError as e:
            data.close(0)
            if control is not None:
                control.close(0)
            raise EngineError(f"cannot bind {self.bind if control is None else self.control}: {e}") from None
        self._data, self._control = data, control

    def serve(self, ready=None) -> None:
        self.open()
        data, control = self._data, self._control
        poller = zmq.Poller()
        poller.register(data, zmq.POLLIN)
        if control is not None:
            poller.register(control, zmq.POLLIN)
        if ready is not None:
            ready()
        self._running = True
        try:
            while self._running:
                events = dict(poller.poll(200))
                if self.parent_pid and not events and not pid_alive(self.parent_pid):
                    log.warning("client process %d is gone; stopping", self.parent_pid)
                    break
                if control is not None and control in events:
                    if control.recv() == b"STOP":
                        break
                if data in events:
                    # drain what is waiting without blocking the control socket for long
                    for _ in range(16):
                        try:
                            parts = data.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        if len(parts) < 2:  # a ROUTER always prefixes the sender's identity
                            continue
                        identity, body = parts[0], parts[1:]
                        try:
                            reply = self.handle(body)
                        except Exception as e:  # one bad frame must not end the engine
                            log.exception("frame failed")
                            reply = self._reject(f"engine error: {type(e).__name__}: {e}")
                        data.send_multipart([identity, *reply.parts()], copy=False)
        finally:
            for sid in list(self.streams):
                self._end_stream(sid)
            if self._spare is not None:
                self._spare.deactivate()
            if self.clips is not None:
                self.clips.close()
                self.clips = None
            data.close(0)
            if control is not None:
                control.close(0)
            self._data = self._control = None


def run_engine(bind: str, control: str | None, backend: str, iris_mm: float, parent_pid: int | None = None,
               cnn: CnnOptions | None = None) -> int:
    """Entry point of ``facemonitor engine``: serve until STOP, SIGTERM, SIGINT or the parent's exit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s engine %(levelname)s %(message)s")
    service = EngineService(bind, control, backend=backend, iris_mm=iris_mm, parent_pid=parent_pid, cnn=cnn)
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    service.open()
    service.warm_up()
    log.info("engine %s ready on %s (backend %s)", __version__, bind, backend)
    try:
        service.serve(ready=lambda: print(f"engine ready on {bind}", flush=True))
    except KeyboardInterrupt:
        pass
    log.info("engine stopped: %d frames, %d rejected", service.stats.frames, service.stats.rejected)
    return 0
