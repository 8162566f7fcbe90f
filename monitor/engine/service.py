"""The engine process: receives frames over ZeroMQ, runs the landmark model and the measure kernels,
and replies with one result per frame.

Sockets: a ROUTER bound at ``bind`` for clients (DEALER) — each message is ``[header, pixels]`` (see
``monitor.transport.wire``) and every reply goes back to its sender; and a PULL ``control`` socket watched by the
same poller, on which ``b"STOP"`` ends the process. Malformed messages are rejected, counted and
answered with a ``reject`` reply; the engine keeps running.

Bounds (``EngineLimits``, docs/engines.md): messages are read part by part and one with more than 2
parts or more bytes than the largest allowed frame is freed at once and refused; a frame's size is
checked from its header before anything is decoded; at most ``max_streams`` streams are open (a new
one beyond is refused with ``refused: true``, which the client turns into an error); a stream silent
for ``stream_idle_s`` is closed and its runner freed; each stream has its own short queue and the
engine serves the queues round-robin, one frame per stream per batch, so a stream of huge frames
cannot stall the others.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import cv2
import numpy as np
import zmq

from calibration.scale import DEFAULT_IRIS_MM, IrisScale
from engines import LandmarkRunner, create_runner
from engines.util import pid_alive
from monitor import __version__
from monitor.cnn.live import ClipEngine, load_clip_model
from monitor.engine.options import CnnOptions, EngineLimits
from monitor.errors import EngineError
from monitor.measures.frame import compile_kernels, compute_measures, nan_to_none
from monitor.transport import wire
from monitor.transport.client import recv_bounded
from monitor.transport.secure import denied_total, secure_server

log = logging.getLogger("facemonitor.engine")


RCVHWM = 64  # messages; clients also keep a credit window, so this bounds memory twice
MAX_BATCH = 16  # messages taken per poll, and streams served per round (one landmark batch)
IDLE_RUNNERS = 4  # live runners kept for new streams
MAX_QUEUED = 64  # messages held in the streams' queues before the engine stops reading its socket


@dataclass
class StreamState:
    runner: LandmarkRunner
    scale: IrisScale
    last_ts_ms: int = -1  # the runner's last VIDEO-mode timestamp
    ts_base: int = 0  # added to the stream's media time: a reused runner's timestamps go on increasing
    frames: int = 0
    frames_with_face: int = 0
    last_seen: float = field(default_factory=time.monotonic)


@dataclass
class EngineStats:
    frames: int = 0
    rejected: int = 0
    reject_reasons: dict = field(default_factory=dict)
    batches: int = 0  # landmark-model calls
    batched_frames: int = 0
    expired: int = 0  # streams closed after stream_idle_s without a message
    refused: int = 0  # new streams refused at max_streams


def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def trim_heap() -> None:
    """Give freed heap memory back to the system. A closed landmarker's memory otherwise stays in the
    process (glibc keeps freed pages of its many threads' arenas), and the engine's RSS creeps up with
    every stream that comes and goes."""
    if _TRIM is not None:
        _TRIM(0)


def to_rgb(image: np.ndarray, fmt: wire.PixelFormat) -> np.ndarray:
    if fmt == wire.PixelFormat.GRAY8:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if fmt == wire.PixelFormat.BGRA32:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class EngineService:
    def __init__(self, bind: str, control: str | None = None, backend: str = "mediapipe",
                 iris_mm: float = DEFAULT_IRIS_MM, ctx: zmq.Context | None = None, parent_pid: int | None = None,
                 cnn: CnnOptions | None = None, limits: EngineLimits | None = None, keys_dir=None,
                 **runner_options) -> None:
        self.bind = bind
        self.limits = limits or EngineLimits()
        self.keys_dir = keys_dir
        self.queues: OrderedDict[uuid.UUID, deque] = OrderedDict()  # per stream: (key, header, pixels)
        self._next_expiry = 0.0
        self.parent_pid = parent_pid  # stop when this process is gone (a local engine's client)
        self.control = control
        self.backend = backend
        self.iris_mm = iris_mm
        self.runner_options = runner_options
        self.ctx = ctx or zmq.Context.instance()
        self.stats = EngineStats()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.streams: dict[uuid.UUID, StreamState] = {}
        self._idle: list[tuple[LandmarkRunner, int]] = []  # live runners for new streams, with their next timestamp
        self.cnn_options = cnn
        self.clips = None  # monitor.cnn.live.ClipEngine once loaded
        self.card = None
        self._running = False
        self._stop_requested = False  # a stop before serving (e.g. SIGTERM during warm-up) is kept
        self._data: zmq.Socket | None = None
        self._control: zmq.Socket | None = None

    # -- runners --------------------------------------------------------------------------------
    def _new_runner(self) -> tuple[LandmarkRunner, int]:
        """A live runner for a new stream and the timestamp it may start at: an idle one when there is
        one (creating and closing landmarkers for every stream lets the engine's memory creep up)."""
        if self._idle:
            return self._idle.pop()
        return create_runner(self.backend, **self.runner_options).activate(), 0

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
        if not self._idle:
            runner = create_runner(self.backend, **self.runner_options).activate()
            runner.infer(np.zeros((64, 64, 3), np.uint8), 0)
            self._idle.append((runner, 1))

        compile_kernels()

    def _stream(self, sid: uuid.UUID) -> StreamState:
        state = self.streams.get(sid)
        if state is None:
            runner, ts_base = self._new_runner()
            state = StreamState(runner, IrisScale(iris_mm=self.iris_mm), last_ts_ms=ts_base - 1, ts_base=ts_base)
            self.streams[sid] = state
        return state

    def _end_stream(self, sid: uuid.UUID) -> StreamState | None:
        state = self.streams.pop(sid, None)
        if state is not None:
            if len(self._idle) < IDLE_RUNNERS:
                self._idle.append((state.runner, state.last_ts_ms + 1))
            else:
                state.runner.deactivate()
                trim_heap()
        return state

    # -- messages -------------------------------------------------------------------------------
    def _reject(self, reason: str, header: wire.FrameHeader | None = None, refused: bool = False) -> wire.Reply:
        self.stats.rejected += 1
        key = reason.split(" ")[0] if reason else "?"
        self.stats.reject_reasons[key] = self.stats.reject_reasons.get(key, 0) + 1
        log.warning("rejected message: %s", reason)
        meta = {"kind": wire.ReplyKind.REJECT, "reason": reason, "rejected_total": self.stats.rejected}
        if header is not None:
            meta.update(stream=str(header.stream), frame=header.frame_id)
        if refused:
            meta["refused"] = True
        return wire.Reply(meta)

    def handle(self, parts: list) -> wire.Reply:
        return self.handle_many([parts])[0]

    def handle_many(self, bodies: list[list]) -> list[wire.Reply]:
        """Replies, in order, to messages received together (every queued message is served)."""
        replies: list[wire.Reply | None] = [None] * len(bodies)
        for i, parts in enumerate(bodies):
            replies[i] = self.receive(i, parts)
        while self.queues:
            for i, reply in self.step():
                replies[i] = reply
        return replies

    def receive(self, key, parts: list) -> wire.Reply | None:
        """Validate one message from sender ``key``: the answer when it has one at once (a reject, a
        pong), else None and the message waits in its stream's queue for ``step``."""
        try:
            header, pixels = wire.decode_frame(parts)
        except wire.WireError as e:
            return self._reject(str(e))
        if header.kind == wire.Kind.PING:
            return self._control_reply(header)
        if header.kind == wire.Kind.FRAME and header.height * header.width > self.limits.max_pixels:
            return self._reject(f"frame size {header.width}x{header.height} over the engine's limit of "
                                f"{self.limits.max_pixels} pixels", header)
        queue = self.queues.get(header.stream)
        if queue is not None and len(queue) >= self.limits.max_queued:
            return self._reject(f"stream queue full ({len(queue)} messages waiting)", header)
        if header.kind == wire.Kind.FRAME and header.stream not in self.streams:
            refusal = self._admit(header.stream)
            if refusal is not None:
                return self._reject(refusal, header, refused=True)
        state = self.streams.get(header.stream)
        if state is not None:
            state.last_seen = time.monotonic()
        self.queues.setdefault(header.stream, deque()).append((key, header, pixels))
        return None

    def _admit(self, sid: uuid.UUID) -> str | None:
        """Open a stream (its runner), or the reason it is refused."""
        if len(self.streams) >= self.limits.max_streams:
            self.expire_idle(time.monotonic(), force=True)
        if len(self.streams) >= self.limits.max_streams:
            self.stats.refused += 1
            return (f"engine {self.name} is full: {len(self.streams)} streams open (its --max-streams); "
                    "try again later or use another engine")
        try:
            self._stream(sid)
        except Exception as e:  # a runner that cannot start must not end the engine
            log.exception("cannot open a stream")
            return f"engine error: cannot open a stream: {type(e).__name__}: {e}"
        return None

    def step(self) -> list[tuple]:
        """One round: the first queued message of up to MAX_BATCH streams, taken round-robin (served
        streams go to the back); the frames among them form one landmark batch. Returns (key, reply)."""
        t_recv = time.monotonic_ns()
        taken = []
        for sid in list(self.queues)[:MAX_BATCH]:
            queue = self.queues.pop(sid)
            taken.append(queue.popleft())
            if queue:
                self.queues[sid] = queue  # back of the line
        frames = [(i, h, px) for i, (_, h, px) in enumerate(taken) if h.kind == wire.Kind.FRAME]
        replies: list = [None] * len(taken)
        self._frames(frames, replies, t_recv)
        for i, (_, header, _) in enumerate(taken):
            if header.kind != wire.Kind.FRAME:
                replies[i] = self._control_reply(header)
        return [(key, reply) for (key, _, _), reply in zip(taken, replies)]

    def expire_idle(self, now: float, force: bool = False) -> int:
        """Close the streams silent for ``stream_idle_s`` (clients that died without END); checked at
        most once a second (or twice per idle time, if shorter) unless ``force``. Returns how many were closed."""
        if not force and now < self._next_expiry:
            return 0
        self._next_expiry = now + min(1.0, self.limits.stream_idle_s / 2)
        idle = [sid for sid, st in list(self.streams.items())
                if now - st.last_seen > self.limits.stream_idle_s and sid not in self.queues]
        for sid in idle:
            self._end_stream(sid)
            if self.clips is not None:
                self.clips.end_stream(sid)
            log.info("stream %s closed after %.0f s without a message", sid, self.limits.stream_idle_s)
        self.stats.expired += len(idle)
        return len(idle)

    def _control_reply(self, header: wire.FrameHeader) -> wire.Reply:
        if header.kind == wire.Kind.PING:
            return wire.Reply({"kind": wire.ReplyKind.PONG, "ping": str(header.stream), "version": __version__,
                               "backend": self.backend, "frames": self.stats.frames, "rejected": self.stats.rejected,
                               "streams": len(self.streams), "engine": self.name, "cnn": self.cnn_info(),
                               "expired": self.stats.expired, "refused": self.stats.refused,
                               "denied": denied_total(self.ctx), "limits": {
                                   "max_streams": self.limits.max_streams,
                                   "stream_idle_s": self.limits.stream_idle_s,
                                   "max_pixels": self.limits.max_pixels}})
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
            ts_ms = max(state.ts_base + max(0, header.t_media_us // 1000), state.last_ts_ms + 1)
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
        """Free every stream's runner, the idle pool's and the clip model."""
        for sid in list(self.streams):
            self._end_stream(sid)
        for runner, _ in self._idle:
            runner.deactivate()
        self._idle = []
        if self.clips is not None:
            self.clips.close()
            self.clips = None

    # -- loop -----------------------------------------------------------------------------------
    def _queued(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def _take(self, data: zmq.Socket) -> None:
        """Read what is waiting (bounded, part by part) into the streams' queues; answer at once what
        needs no model (rejects, pongs). A ROUTER prefixes each message with the sender's identity."""
        messages, refused = recv_bounded(data, MAX_BATCH, 2, self.limits.max_message_bytes, envelope=1)
        for identity, reason in refused:
            data.send_multipart([identity, *self._reject(reason).parts()], copy=False)
        for parts in messages:
            if len(parts) < 2:
                continue
            reply = self.receive(parts[0], parts[1:])
            if reply is not None:
                data.send_multipart([parts[0], *reply.parts()], copy=False)

    def stop(self) -> None:
        self._stop_requested = True
        self._running = False

    def start_running(self) -> None:
        """Enter the serving loop's state, unless a stop was asked for already (then it stays stopped)."""
        self._running = not self._stop_requested

    def open(self) -> None:
        """Bind the sockets (done first, so a bad endpoint fails before the model loads)."""
        if self._data is not None:
            return
        data = self.ctx.socket(zmq.ROUTER)
        data.setsockopt(zmq.LINGER, 0)
        data.setsockopt(zmq.RCVHWM, RCVHWM)
        data.setsockopt(zmq.MAXMSGSIZE, self.limits.max_part_bytes)
        control = None
        try:
            secure_server(data, self.bind, self.keys_dir)
        except EngineError:
            data.close(0)
            raise
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
        self.start_running()
        try:
            while self._running:
                events = dict(poller.poll(0 if self.queues else 200))
                if self.parent_pid and not events and not pid_alive(self.parent_pid):
                    log.warning("client process %d is gone; stopping", self.parent_pid)
                    break
                if control is not None and control in events:
                    if control.recv() == b"STOP":
                        break
                if data in events and self._queued() < MAX_QUEUED:
                    self._take(data)
                if self.queues:
                    for identity, reply in self.step():
                        data.send_multipart([identity, *reply.parts()], copy=False)
                self.expire_idle(time.monotonic())
        finally:
            self.close_streams()
            data.close(0)
            if control is not None:
                control.close(0)
            self._data = self._control = None
