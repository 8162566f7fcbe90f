"""The engine process: receives frames over ZeroMQ, runs the landmark model and the measure kernels,
and replies with one result per frame.

Sockets: a ROUTER bound at ``bind`` for clients (DEALER) — each message is ``[header, pixels]`` (see
``monitor.transport.wire``) and every reply goes back to its sender; and a PULL ``control`` socket watched by the
same poller, on which ``b"STOP"`` ends the process. Malformed messages are rejected, counted and
answered with a ``reject`` reply; the engine keeps running.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

import cv2
import numpy as np
import zmq

from calibration.scale import DEFAULT_IRIS_MM, IrisScale
from engines import LandmarkRunner, create_runner
from engines.util import pid_alive
from monitor import __version__
from monitor.cnn.live import ClipEngine, load_clip_model
from monitor.engine.options import CnnOptions
from monitor.errors import EngineError
from monitor.measures.frame import compile_kernels, compute_measures, nan_to_none
from monitor.transport import wire
from monitor.transport.client import recv_waiting

log = logging.getLogger("facemonitor.engine")


RCVHWM = 64  # messages; clients also keep a credit window, so this bounds memory twice
MAX_BATCH = 16  # messages taken per poll; their frames of different streams form one landmark batch


@dataclass
class StreamState:
    runner: LandmarkRunner
    scale: IrisScale
    last_ts_ms: int = -1
    frames: int = 0
    frames_with_face: int = 0


@dataclass
class EngineStats:
    frames: int = 0
    rejected: int = 0
    reject_reasons: dict = field(default_factory=dict)
    batches: int = 0  # landmark-model calls
    batched_frames: int = 0


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
        self.name = f"{socket.gethostname()}:{os.getpid()}"
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
        warm = create_runner(self.backend, **self.runner_options).activate()
        warm.infer(np.zeros((64, 64, 3), np.uint8), 0)
        # a fresh spare (VIDEO mode timestamps and tracking start again), made before the warm runner
        # goes, so that backends whose runners share loaded networks (onnx) do not load them again
        self._spare = create_runner(self.backend, **self.runner_options).activate()
        warm.deactivate()

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
            if self._spare is None:  # made before the old runner goes: shared networks stay loaded
                self._spare = create_runner(self.backend, **self.runner_options).activate()
            state.runner.deactivate()
        return state

    # -- messages -------------------------------------------------------------------------------
    def _reject(self, reason: str) -> wire.Reply:
        self.stats.rejected += 1
        key = reason.split(" ")[0] if reason else "?"
        self.stats.reject_reasons[key] = self.stats.reject_reasons.get(key, 0) + 1
        log.warning("rejected message: %s", reason)
        return wire.Reply({"kind": wire.ReplyKind.REJECT, "reason": reason, "rejected_total": self.stats.rejected})

    def handle(self, parts: list) -> wire.Reply:
        return self.handle_many([parts])[0]

    def handle_many(self, bodies: list[list]) -> list[wire.Reply]:
        """Replies, in order, to messages received together. Frames of different streams go through
        the landmark model as one batch (backends that batch); a stream's frames stay in order."""
        t_recv = time.monotonic_ns()
        replies: list[wire.Reply | None] = [None] * len(bodies)
        frames: list[tuple[int, wire.FrameHeader, np.ndarray]] = []
        for i, parts in enumerate(bodies):
            try:
                header, pixels = wire.decode_frame(parts)
            except wire.WireError as e:
                replies[i] = self._reject(str(e))
                continue
            if header.kind == wire.Kind.FRAME:
                frames.append((i, header, pixels))
                continue
            self._frames(frames, replies, t_recv)  # an END answers after the frames before it
            frames = []
            replies[i] = self._control_reply(header)
        self._frames(frames, replies, t_recv)
        return replies

    def _control_reply(self, header: wire.FrameHeader) -> wire.Reply:
        if header.kind == wire.Kind.PING:
            return wire.Reply({"kind": wire.ReplyKind.PONG, "ping": str(header.stream), "version": __version__,
                               "backend": self.backend, "frames": self.stats.frames, "rejected": self.stats.rejected,
                               "streams": len(self.streams), "engine": self.name, "cnn": self.cnn_info()})
        state = self._end_stream(header.stream)
        cnn = self.clips.end_stream(header.stream) if self.clips is not None else []
        return wire.Reply({"kind": wire.ReplyKind.END, "stream": str(header.stream), "cnn": cnn,
                           "cnn_stats": self.clips.stats.report() if self.clips is not None else None,
                           "frames": state.frames if state else 0,
                           "frames_with_face": state.frames_with_face if state else 0,
                           "rejected": self.stats.rejected})

    def _frames(self, items: list, replies: list, t_recv: int) -> None:
        while items:  # rounds of at most one frame per stream
            seen: set = set()
            batch, later = [], []
            for item in items:
                (later if item[1].stream in seen else batch).append(item)
                seen.add(item[1].stream)
            try:
                for (i, _, _), reply in zip(batch, self._batch(batch, t_recv)):
                    replies[i] = reply
            except Exception as e:  # one bad batch must not end the engine
                log.exception("batch failed")
                for i, _, _ in batch:
                    replies[i] = self._reject(f"engine error: {type(e).__name__}: {e}")
            items = later

    def _batch(self, batch: list, t_recv: int) -> list[wire.Reply]:
        states = [self._stream(h.stream) for _, h, _ in batch]
        t0 = time.perf_counter()
        stamps, images = [], []
        for state, (_, header, pixels) in zip(states, batch):
            ts_ms = max(header.t_media_us // 1000, state.last_ts_ms + 1)
            state.last_ts_ms = ts_ms
            stamps.append(ts_ms)
            images.append(to_rgb(pixels, header.pixel_format))
        runners = [st.runner for st in states]
        results = type(runners[0]).infer_batch(runners, images, stamps)
        landmarks_ms = (time.perf_counter() - t0) * 1e3
        self.stats.batches += 1
        self.stats.batched_frames += len(batch)
        replies = []
        for state, (_, header, _), rgb, result in zip(states, batch, images, results):
            t1 = time.perf_counter()
            measures = compute_measures(result, state.scale, rgb)
            t2 = time.perf_counter()
            cnn = self.clips.frame(header.stream, header.frame_id, rgb, result.landmarks_px) if self.clips else []
            t3 = time.perf_counter()
            state.frames += 1
            self.stats.frames += 1
            state.frames_with_face += result.face
            meta = {
                "kind": wire.ReplyKind.RESULT, "stream": str(header.stream), "frame": header.frame_id,
                "t_capture_ns": header.t_capture_ns, "t_media_us": header.t_media_us, "step": header.step,
                "dropped_total": header.dropped_total, "face": result.face, "faces": result.faces,
                "height": header.height, "width": header.width, "engine": self.name,
                "measures": nan_to_none(measures), "cnn": cnn,
                "timing": {"t_recv_ns": t_recv, "landmarks_ms": landmarks_ms, "batch": len(batch),
                           "kernels_ms": (t2 - t1) * 1e3, "cnn_ms": (t3 - t2) * 1e3,
                           "t_reply_ns": time.monotonic_ns()},
            }
            replies.append(wire.Reply(meta, result.landmarks_px, result.blendshapes, result.matrix))
        return replies

    def close_streams(self) -> None:
        """Free every stream's runner, the spare and the clip model."""
        for sid in list(self.streams):
            self._end_stream(sid)
        if self._spare is not None:
            self._spare.deactivate()
        if self.clips is not None:
            self.clips.close()
            self.clips = None

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
                    # drain what is waiting (one batch) without blocking the control socket for long
                    # a ROUTER always prefixes the sender's identity
                    waiting = [p for p in recv_waiting(data, MAX_BATCH) if len(p) >= 2]
                    replies = self.handle_many([p[1:] for p in waiting])
                    for identity, reply in zip([p[0] for p in waiting], replies):
                        data.send_multipart([identity, *reply.parts()], copy=False)
        finally:
            self.close_streams()
            data.close(0)
            if control is not None:
                control.close(0)
            self._data = self._control = None
