"""Client side of the ZeroMQ transport (the local engine process is monitor.engine.local).

``EngineClient`` is a DEALER connected to an engine's ROUTER. It keeps a credit window: at most
``window`` frames are in flight, so neither side's queues grow without bound, and a record-mode
sender waits for the engine rather than losing frames. Replies are validated; malformed ones are
counted, never trusted.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import zmq

from monitor.errors import EngineError
from monitor.transport import wire
from monitor.transport.secure import secure_client


def recv_waiting(sock: zmq.Socket, limit: int) -> list[list]:
    """Up to ``limit`` multipart messages already waiting on ``sock``, without blocking (one batch)."""
    out = []
    for _ in range(limit):
        try:
            out.append(sock.recv_multipart(zmq.NOBLOCK, copy=False))
        except zmq.Again:
            break
    return out


def recv_bounded(sock: zmq.Socket, limit: int, max_parts: int, max_bytes: int,
                 envelope: int = 0) -> tuple[list, list]:
    """Up to ``limit`` waiting messages, read part by part, without blocking. A message with more than
    ``max_parts`` parts or more than ``max_bytes`` in all is read to its end and freed at once; it comes
    back as ``(first part, reason)`` in the second list, so the sender (a ROUTER's identity) can be told.
    With ``envelope=1`` the first part (a ROUTER's identity) is not counted. (ZMQ_MAXMSGSIZE bounds each
    part before ZeroMQ allocates it; this bounds the message.)"""
    out, refused = [], []
    for _ in range(limit):
        try:
            first = sock.recv(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            break
        parts, count, size = [first], 1 - envelope, len(first) if envelope == 0 else 0
        while sock.getsockopt(zmq.RCVMORE):
            part = sock.recv(copy=False)
            count, size = count + 1, size + len(part)
            if parts is not None:
                parts.append(part)
                if count > max_parts or size > max_bytes:
                    parts = None  # freed here; the rest is read and dropped
        if parts is None:
            refused.append((first, f"message too large ({count} parts, {size} bytes; at most {max_parts} parts, "
                                   f"{max_bytes} bytes)"))
        else:
            out.append(parts)
    return out, refused


RESEND_BUDGET_S = 20.0  # how long a frame the broker lost (or never answered) keeps being sent again
RESEND_AFTER_S = 5.0  # behind a broker: a frame unanswered this long is sent again (the broker may have restarted)


@dataclass
class _Pending:
    """A frame (or a stream's END) in flight: what was sent, so it can be sent again."""

    parts: list
    first_sent: float
    last_sent: float
    attempts: int = 1
    due: float | None = None  # when to send it again, after the broker reported it lost


class EngineClient:
    """A DEALER to an engine or a broker, with a credit window of ``window`` messages in flight.

    It keeps what it sent until the answer arrives. Behind a broker (its pong says so) a ``lost``
    frame (its engine died, or no engine was there) is sent again after a short wait, and a frame
    unanswered for ``RESEND_AFTER_S`` (a restarted broker forgot it) too, for up to ``resend_budget_s``
    from its first send; only then does the ``lost`` reply reach the caller, so the session records a
    ``frame_lost`` event (and later frames are reported lost at once until a result comes again; an END
    that cannot be delivered, or a peer silent for the whole budget, raises EngineError). A second
    answer to a frame sent twice is dropped (``duplicates``), and a result that overtakes an earlier
    frame being resent waits for it, so results arrive in the order frames were sent. A reject
    with ``refused`` (the engine is full) raises EngineError. tcp endpoints use CURVE keys from
    ``keys_dir`` (``monitor.transport.keys``); without them the client refuses to start."""

    def __init__(self, endpoint: str, ctx: zmq.Context | None = None, window: int = 3, keys_dir=None,
                 resend_budget_s: float = RESEND_BUDGET_S) -> None:
        self.endpoint = endpoint
        self.ctx = ctx or zmq.Context.instance()
        self.window = window
        self.resend_budget_s = resend_budget_s
        self.pending: OrderedDict[tuple, _Pending] = OrderedDict()  # (stream, frame id or "end") → what was sent
        self.untracked = 0  # pings and raw messages awaiting an answer
        self._held: list[tuple[tuple, wire.Reply]] = []  # results that overtook an earlier frame being resent
        self.bad_replies = 0
        self.resent = 0
        self.duplicates = 0
        self.via_broker = False
        self._last_heard = time.monotonic()  # any valid reply
        self._given_up = False  # a frame's budget ran out and no result came since: resend no more
        self._awaited_ping: str | None = None
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, max(4, window * 2))
        self.sock.setsockopt(zmq.RCVHWM, max(4, window * 2))
        self.sock.setsockopt(zmq.MAXMSGSIZE, 1 << 22)  # replies are small
        try:
            secure_client(self.sock, endpoint, keys_dir)
        except EngineError:
            self.sock.close(0)
            raise
        self.sock.connect(endpoint)

    @property
    def in_flight(self) -> int:
        return len(self.pending) + len(self._held) + self.untracked

    @property
    def has_credit(self) -> bool:
        return self.in_flight < self.window

    def _track(self, key: tuple, parts: list) -> None:
        now = time.monotonic()
        self.pending[key] = _Pending(parts, now, now)
        self.sock.send_multipart(parts, copy=False)

    def send_frame(self, stream: uuid.UUID, frame_id: int, t_capture_ns: int, t_media_us: int,
                   image: np.ndarray, step: str = "", dropped_total: int = 0) -> None:
        h, w = image.shape[:2]
        header = wire.FrameHeader(wire.Kind.FRAME, stream, frame_id, t_capture_ns, t_media_us, h, w,
                                  wire.pixel_format_for(image), step, dropped_total)
        self._track((str(stream), frame_id), wire.frame_message(header, np.ascontiguousarray(image)))

    def send_control(self, kind: wire.Kind, stream: uuid.UUID) -> None:
        message = wire.FrameHeader(kind, stream).pack()
        if kind == wire.Kind.END and self._frames_pending(str(stream)):
            # held until the stream's frames are answered: a broker that lost the stream's engine would
            # otherwise answer the END at once, before frames still being resent
            now = time.monotonic()
            self.pending[(str(stream), "end")] = _Pending([message], now, now, attempts=0, due=now)
        elif kind == wire.Kind.END:
            self._track((str(stream), "end"), [message])
        else:
            self.untracked += 1
            self.sock.send(message)

    def send_raw(self, parts: list) -> None:
        """Send arbitrary parts (used by tests and fuzzing to exercise the engine's validation)."""
        self.sock.send_multipart(parts)
        self.untracked += 1

    def _frames_pending(self, stream: str) -> bool:
        return any(k[0] == stream and k[1] != "end" for k in self.pending)

    def _resend_due(self, now: float) -> wire.Reply | None:
        """Send again what is due (and a held END once its frames are answered); a ``lost`` reply for
        the first message whose budget is spent."""
        for key, p in list(self.pending.items()):
            if p.attempts == 0:  # a held END
                if not self._frames_pending(key[0]):
                    p.first_sent = p.last_sent = now
                    p.attempts, p.due = 1, None
                    self.sock.send_multipart(p.parts, copy=False)
                continue
            stale = self.via_broker and now - p.last_sent > RESEND_AFTER_S
            if (p.due is None or p.due > now) and not stale:
                continue
            if now - p.first_sent > self._budget():
                del self.pending[key]
                self._give_up(key, now)
                return wire.Reply({"kind": wire.ReplyKind.LOST, "stream": key[0],
                                   "frame": None if key[1] == "end" else key[1], "end": key[1] == "end",
                                   "engine": None, "reason": f"no answer after {p.attempts} sends in "
                                   f"{now - p.first_sent:.0f} s"})
            p.due, p.last_sent, p.attempts = None, now, p.attempts + 1
            self.resent += 1
            self.sock.send_multipart(p.parts, copy=False)
        return None

    def _earlier_pending(self, key: tuple) -> bool:
        return any(k[0] == key[0] and k[1] != "end" and k[1] < key[1] for k in self.pending)

    def _release(self) -> wire.Reply | None:
        """The first held result no earlier frame of its stream is still waiting for."""
        for i, (key, reply) in enumerate(self._held):
            if not self._earlier_pending(key):
                del self._held[i]
                return reply
        return None

    def _budget(self) -> float:
        return 0.0 if self._given_up else self.resend_budget_s

    def _give_up(self, key: tuple, now: float) -> None:
        """A message's resend budget is spent: later frames are reported lost at once until a result
        comes; a stream's END that cannot be delivered, or a peer silent all along, is an error."""
        self._given_up = True
        if key[1] == "end":
            raise EngineError(f"{self.endpoint} did not answer the end of the stream within "
                              f"{self.resend_budget_s:.0f} s")
        if now - self._last_heard > self.resend_budget_s:
            raise EngineError(f"{self.endpoint} sent nothing for {now - self._last_heard:.0f} s")

    def _next_wake(self, deadline: float) -> float:
        wake = deadline
        for p in self.pending.values():
            if p.attempts == 0:  # a held END goes once a reply settles its frames
                continue
            wake = min(wake, p.due if p.due is not None else wake,
                       p.last_sent + RESEND_AFTER_S if self.via_broker else wake)
        return wake

    def recv(self, timeout_ms: int) -> wire.Reply | None:
        """The next valid reply, or None if nothing valid arrived within ``timeout_ms``. A pong that
        answers an earlier ping (one retried while the engine was still starting) is dropped, and so
        is a ``lost`` frame that is being sent again."""
        deadline = time.monotonic() + timeout_ms / 1e3
        while True:
            now = time.monotonic()
            given_up = self._resend_due(now)
            if given_up is not None:
                return given_up
            released = self._release()
            if released is not None:
                return released
            left = max(0, int((min(self._next_wake(deadline), deadline) - now) * 1e3))
            if not self.sock.poll(left, zmq.POLLIN):
                if time.monotonic() >= deadline:
                    return None
                continue
            parts = self.sock.recv_multipart(copy=False)
            try:
                reply = wire.Reply.from_parts(parts)
            except wire.WireError:
                self.bad_replies += 1
                continue
            self._last_heard = time.monotonic()
            reply = self._settle(reply, self._last_heard)
            if reply is not None:
                return reply

    def _settle(self, reply: wire.Reply, now: float) -> wire.Reply | None:
        """Match a reply with what is in flight; None when the caller should not see it."""
        meta, kind = reply.meta, reply.kind
        if kind == wire.ReplyKind.PONG:
            self.untracked = max(0, self.untracked - 1)
            self.via_broker = self.via_broker or bool(meta.get("broker"))
            return reply if meta.get("ping") == self._awaited_ping else None
        end = kind == wire.ReplyKind.END or (kind == wire.ReplyKind.LOST and meta.get("end"))
        key = (meta.get("stream"), "end" if end else meta.get("frame"))
        p = self.pending.get(key) if isinstance(key[1], (int, str)) else None
        if kind == wire.ReplyKind.LOST and p is not None and meta.get("retry"):
            if now - p.first_sent < self._budget():
                p.due = now + min(2.0, 0.25 * p.attempts)  # an engine may join or take over meanwhile
                return None
            del self.pending[key]
            self._give_up(key, now)
            return reply
        self._given_up = self._given_up and kind != wire.ReplyKind.RESULT
        if p is not None:
            del self.pending[key]
            if kind == wire.ReplyKind.RESULT and self._earlier_pending(key):
                self._held.append((key, reply))  # results reach the caller in the order frames were sent
                return None
        elif self.untracked:
            self.untracked -= 1
        elif kind == wire.ReplyKind.REJECT and self.pending:
            self.pending.popitem(last=False)  # a reject that names no frame answers the oldest
        elif kind in (wire.ReplyKind.RESULT, wire.ReplyKind.END):
            self.duplicates += 1  # the answer to a frame sent twice, already answered
            return None
        if kind == wire.ReplyKind.REJECT and meta.get("refused"):
            raise EngineError(f"the engine refused the stream: {meta.get('reason')}")
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
