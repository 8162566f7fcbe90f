"""Client side of the ZeroMQ transport (the local engine process is monitor.engine.local).

``EngineClient`` is a DEALER connected to an engine's ROUTER. It keeps a credit window: at most
``window`` frames are in flight, so neither side's queues grow without bound, and a record-mode
sender waits for the engine rather than losing frames. Replies are validated; malformed ones are
counted, never trusted.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import zmq

from monitor.errors import EngineError
from monitor.transport import wire


def recv_waiting(sock: zmq.Socket, limit: int) -> list[list]:
    """Up to ``limit`` multipart messages already waiting on ``sock``, without blocking (one batch)."""
    out = []
    for _ in range(limit):
        try:
            out.append(sock.recv_multipart(zmq.NOBLOCK, copy=False))
        except zmq.Again:
            break
    return out


class EngineClient:
    def __init__(self, endpoint: str, ctx: zmq.Context | None = None, window: int = 3) -> None:
        self.endpoint = endpoint
        self.ctx = ctx or zmq.Context.instance()
        self.window = window
        self.in_flight = 0
        self.bad_replies = 0
        self._awaited_ping: str | None = None
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, max(4, window * 2))
        self.sock.setsockopt(zmq.RCVHWM, max(4, window * 2))
        self.sock.setsockopt(zmq.MAXMSGSIZE, 1 << 22)  # replies are small
        self.sock.connect(endpoint)

    @property
    def has_credit(self) -> bool:
        return self.in_flight < self.window

    def send_frame(self, stream: uuid.UUID, frame_id: int, t_capture_ns: int, t_media_us: int,
                   image: np.ndarray, step: str = "", dropped_total: int = 0) -> None:
        h, w = image.shape[:2]
        header = wire.FrameHeader(wire.Kind.FRAME, stream, frame_id, t_capture_ns, t_media_us, h, w,
                                  wire.pixel_format_for(image), step, dropped_total)
        self.sock.send_multipart(wire.frame_message(header, np.ascontiguousarray(image)), copy=False)
        self.in_flight += 1

    def send_control(self, kind: wire.Kind, stream: uuid.UUID) -> None:
        self.sock.send(wire.FrameHeader(kind, stream).pack())
        self.in_flight += 1

    def send_raw(self, parts: list) -> None:
        """Send arbitrary parts (used by tests and fuzzing to exercise the engine's validation)."""
        self.sock.send_multipart(parts)
        self.in_flight += 1

    def recv(self, timeout_ms: int) -> wire.Reply | None:
        """The next valid reply, or None if nothing valid arrived within ``timeout_ms``. A pong that
        answers an earlier ping (one retried while the engine was still starting) is dropped."""
        deadline = time.monotonic() + timeout_ms / 1e3
        while True:
            left = max(0, int((deadline - time.monotonic()) * 1e3))
            if not self.sock.poll(left, zmq.POLLIN):
                return None
            parts = self.sock.recv_multipart(copy=False)
            self.in_flight = max(0, self.in_flight - 1)
            try:
                reply = wire.Reply.from_parts(parts)
            except wire.WireError:
                self.bad_replies += 1
                continue
            if reply.meta.get("kind") == wire.ReplyKind.PONG and reply.meta.get("ping") != self._awaited_ping:
                continue
            return reply

    def ping(self, timeout_s: float) -> dict:
        ping = uuid.uuid4()
        self._awaited_ping = str(ping)
        self.send_control(wire.Kind.PING, ping)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                reply = self.recv(int(max(1, (deadline - time.monotonic()) * 1e3)))
                if reply is not None and reply.kind == wire.ReplyKind.PONG:
                    return reply.meta
        finally:
            self._awaited_ping = None
        raise EngineError(f"engine at {self.endpoint} did not answer within {timeout_s:.0f} s")

    def close(self) -> None:
        self.sock.close(0)
