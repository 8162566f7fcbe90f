"""Engines across machines: a ZeroMQ broker between capture clients and engine processes.

The zguide's reliable-queue pattern (Paranoid Pirate), fitted to streams of frames:

- Clients connect a DEALER to the broker's ``frontend`` ROUTER exactly as they would to one engine
  (``facemonitor analyze --engine tcp://broker:5555``); the broker answers their pings itself.
- Engines connect a DEALER to the ``backend`` ROUTER (``facemonitor engine --broker tcp://broker:5556``),
  announce themselves with READY and then exchange HEARTBEATs with the broker every
  ``HEARTBEAT_S``. Any message counts as a sign of life.
- A stream sticks to one engine (its tracking state lives there); a new stream goes to the engine
  with the fewest streams. When an engine has been silent for ``LIVENESS`` heartbeats it is dropped:
  each frame it held is answered to its client as ``lost`` (so the client's credit returns and the
  gap is recorded), and its streams move to the remaining engines on their next frame.
- An engine that hears nothing from the broker for ``LIVENESS`` heartbeats reconnects with a fresh
  socket, backing off from 1 s to 32 s between fresh sockets while it keeps sending heartbeats
  (``monitor.engine.worker``); a broker that does not know an engine (it restarted) answers it with
  WHO, and the engine announces itself again, so a restarted broker has its engines back within
  about a second.
- ``lost`` replies carry ``retry: true``: the client resends the frame (to the surviving engines, or
  once one has joined) and reports it lost only when its resend budget is spent
  (``monitor.transport.client``).
- Every malformed message on either socket is dropped (a client gets a ``reject``), counted in
  ``BrokerStats.malformed`` and logged; nothing a peer sends ends the broker. tcp endpoints use CURVE
  (``monitor.transport.secure``): only holders of an authorized client key get in.

Messages between broker and engine: engine → broker ``[READY, json]``, ``[HEARTBEAT]``,
``[REPLY, client id, *reply parts]``; broker → engine ``[HEARTBEAT]``, ``[REQUEST, client id, *frame
parts]``. Frames and replies are the ``monitor.transport.wire`` messages, passed through unchanged.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from engines.util import serve_until_interrupted
from monitor import __version__
from monitor.errors import EngineError
from monitor.transport import wire
from monitor.transport.client import recv_bounded
from monitor.transport.secure import denied_total, secure_server

log = logging.getLogger("facemonitor.broker")

HEARTBEAT_S = 0.5
LIVENESS = 4  # heartbeats missed before a peer counts as gone
READY, HEARTBEAT, REQUEST, REPLY, WHO = b"READY", b"HEARTBEAT", b"REQUEST", b"REPLY", b"WHO"
STREAM_IDLE_S = 300.0  # a stream whose client sent nothing for this long is forgotten (its client died)
MAX_REPLY_PARTS = 4  # [json, landmarks, blendshapes, matrix]
MAX_READY_BYTES = 4096
MAX_REPLY_BYTES = 1 << 22  # an engine's message: a reply is JSON and three small float arrays


@dataclass
class EngineRecord:
    identity: bytes
    name: str
    backend: str
    expiry: float
    streams: set = field(default_factory=set)
    in_flight: dict = field(default_factory=dict)  # (stream, frame) → client identity
    frames: int = 0


@dataclass
class BrokerStats:
    frames: int = 0
    lost: int = 0
    engines_lost: int = 0
    reassigned_streams: int = 0
    malformed: int = 0  # messages dropped or rejected because they do not follow the protocol
    streams_forgotten: int = 0


class Broker:
    def __init__(self, frontend: str, backend: str, ctx: zmq.Context | None = None,
                 keys_dir: Path | None = None) -> None:
        self.frontend_endpoint, self.backend_endpoint = frontend, backend
        self.ctx = ctx or zmq.Context.instance()
        self.keys_dir = keys_dir
        self.engines: OrderedDict[bytes, EngineRecord] = OrderedDict()
        self.owner: dict = {}  # stream id (str) → engine identity
        self.stream_seen: dict = {}  # stream id (str) → when its client last sent something
        self._asked: dict = {}  # unknown engine identity → when it was last asked WHO
        self.stats = BrokerStats()
        self._running = False
        self.front = self.back = None

    def open(self) -> None:
        front = self.ctx.socket(zmq.ROUTER)
        back = self.ctx.socket(zmq.ROUTER)
        for s, limit in ((front, wire.max_part_bytes(wire.DEFAULT_MAX_PIXELS)), (back, MAX_REPLY_BYTES)):
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.MAXMSGSIZE, limit)
        try:
            secure_server(front, self.frontend_endpoint, self.keys_dir)
            secure_server(back, self.backend_endpoint, self.keys_dir)
        except EngineError:
            front.close(0)
            back.close(0)
            raise
        try:
            front.bind(self.frontend_endpoint)
            back.bind(self.backend_endpoint)
        except zmq.ZMQError as e:
            front.close(0)
            back.close(0)
            raise EngineError(f"broker cannot bind {self.frontend_endpoint} / {self.backend_endpoint}: {e}") from None
        self.front, self.back = front, back

    def stop(self) -> None:
        self._running = False

    # -- engines ----------------------------------------------------------------------------------
    def _malformed(self, side: str, why: str) -> None:
        self.stats.malformed += 1
        log.warning("dropped a malformed message from %s: %s", side, why)

    def _engine_message(self, parts: list) -> None:
        identity, command, rest = parts[0].bytes, parts[1].bytes, parts[2:]
        record = self.engines.get(identity)
        now = time.monotonic()
        if command == READY:
            info = _ready_info(rest)
            if info is None:
                return self._malformed("an engine", "READY without a JSON object")
            if record is not None:  # the same connection announcing again (it got several WHOs): nothing is lost
                record.expiry = now + HEARTBEAT_S * LIVENESS
                return
            record = EngineRecord(identity, str(info.get("engine", identity.hex()))[:200],
                                  str(info.get("backend", "?"))[:50], now + HEARTBEAT_S * LIVENESS)
            self.engines[identity] = record
            log.info("engine %s (%s) joined; %d engines", record.name, record.backend, len(self.engines))
            return
        if command not in (HEARTBEAT, REPLY):
            return self._malformed("an engine", f"unknown command {command[:16]!r}")
        if record is None:  # not (or no longer) registered, e.g. after a broker restart: ask who it is
            if now - self._asked.get(identity, 0.0) > HEARTBEAT_S:  # once per heartbeat, not per message
                self._asked[identity] = now
                if len(self._asked) > 1024:
                    self._asked.clear()
                self.back.send_multipart([identity, WHO])
            return
        record.expiry = now + HEARTBEAT_S * LIVENESS
        if command == REPLY:
            self._engine_reply(record, rest)

    def _engine_reply(self, record: EngineRecord, rest: list) -> None:
        if not 2 <= len(rest) <= 1 + MAX_REPLY_PARTS:
            return self._malformed(record.name, f"REPLY with {len(rest)} parts")
        client, reply = rest[0].bytes, rest[1:]
        try:
            meta = wire.Reply.from_parts(reply).meta
        except wire.WireError as e:
            return self._malformed(record.name, f"REPLY that is not a reply ({e})")
        stream, frame = meta.get("stream"), meta.get("frame")
        if not isinstance(stream, (str, type(None))) or not isinstance(frame, (int, type(None))):
            return self._malformed(record.name, "REPLY naming a stream or frame of the wrong type")
        if meta["kind"] == wire.ReplyKind.RESULT:
            if record.in_flight.pop((stream, frame), None) is None:
                return self._malformed(record.name, f"result for frame {frame} it was not sent")
            record.frames += 1
        elif meta["kind"] == wire.ReplyKind.END:
            record.streams.discard(stream)
            self.owner.pop(stream, None)
            self.stream_seen.pop(stream, None)
            record.in_flight.pop((stream, "end"), None)
        elif meta["kind"] == wire.ReplyKind.REJECT:  # frees the frame it names, else the client's oldest
            key = (stream, frame) if (stream, frame) in record.in_flight else None
            key = key or next((k for k, c in record.in_flight.items() if c == client), None)
            if key is None:
                return self._malformed(record.name, "reject for nothing it holds")
            record.in_flight.pop(key)
        else:
            return self._malformed(record.name, f"REPLY of kind {meta['kind']}")
        self.front.send_multipart([client, *reply], copy=False)

    def _drop(self, record: EngineRecord, why: str) -> None:
        self.engines.pop(record.identity, None)
        self.stats.engines_lost += 1
        for (stream, frame), client in record.in_flight.items():
            self.stats.lost += 1
            meta = {"kind": wire.ReplyKind.LOST, "stream": stream, "frame": None if frame == "end" else frame,
                    "end": frame == "end", "engine": record.name, "reason": f"engine {record.name} {why}",
                    "retry": True}
            self.front.send_multipart([client, *wire.Reply(meta).parts()])
        for stream in record.streams:
            if self.owner.get(stream) == record.identity:
                del self.owner[stream]
                self.stats.reassigned_streams += 1
        log.warning("engine %s %s: %d frames lost, %d streams to reassign", record.name, why,
                    len(record.in_flight), len(record.streams))

    def _expire(self, now: float) -> None:
        for record in list(self.engines.values()):
            if record.expiry < now:
                self._drop(record, f"stopped answering (no heartbeat for {HEARTBEAT_S * LIVENESS:.1f} s)")
        for stream, seen in list(self.stream_seen.items()):  # clients that died without END
            if now - seen > STREAM_IDLE_S:
                del self.stream_seen[stream]
                owner = self.engines.get(self.owner.pop(stream, b""))
                if owner is not None:
                    owner.streams.discard(stream)
                self.stats.streams_forgotten += 1

    def _pick(self, stream: str) -> EngineRecord | None:
        owner = self.engines.get(self.owner.get(stream, b""))
        if owner is not None:
            return owner
        if not self.engines:
            return None
        record = min(self.engines.values(), key=lambda r: (len(r.streams), len(r.in_flight)))
        record.streams.add(stream)
        self.owner[stream] = record.identity
        return record

    # -- clients ----------------------------------------------------------------------------------
    def _client_message(self, parts: list) -> None:
        client, body = parts[0].bytes, parts[1:]
        try:
            header, _ = wire.decode_frame(body)  # header, part count and pixel size; nothing is copied
        except wire.WireError as e:
            header, error = None, str(e)
        if header is None:
            self.stats.malformed += 1
            self.front.send_multipart([client, *wire.Reply({"kind": wire.ReplyKind.REJECT, "reason": error}).parts()])
            return
        stream = str(header.stream)
        if header.kind == wire.Kind.FRAME and header.height * header.width > wire.DEFAULT_MAX_PIXELS:
            self.stats.malformed += 1
            reason = (f"frame size {header.width}x{header.height} over the broker's limit of "
                      f"{wire.DEFAULT_MAX_PIXELS} pixels")
            self.front.send_multipart([client, *wire.Reply({"kind": wire.ReplyKind.REJECT, "reason": reason,
                                                            "stream": stream, "frame": header.frame_id}).parts()])
            return
        if header.kind == wire.Kind.PING:
            meta = {"kind": wire.ReplyKind.PONG, "ping": stream, "version": __version__, "broker": True,
                    "engines": len(self.engines), "engine_names": [r.name for r in self.engines.values()],
                    "backend": next(iter(self.engines.values())).backend if self.engines else None,
                    "frames": self.stats.frames, "lost": self.stats.lost, "malformed": self.stats.malformed,
                    "denied": denied_total(self.ctx), "streams": len(self.owner), "cnn": None}
            self.front.send_multipart([client, *wire.Reply(meta).parts()])
            return
        self.stream_seen[stream] = time.monotonic()
        if header.kind == wire.Kind.END and stream not in self.owner:
            meta = {"kind": wire.ReplyKind.END, "stream": stream, "cnn": [], "frames": 0, "frames_with_face": 0}
            self.front.send_multipart([client, *wire.Reply(meta).parts()])
            return
        record = self._pick(stream)
        if record is None:
            self.stats.lost += header.kind == wire.Kind.FRAME
            meta = {"kind": wire.ReplyKind.LOST, "stream": stream, "frame": header.frame_id, "engine": None,
                    "end": header.kind == wire.Kind.END, "reason": "no engine is connected to the broker",
                    "retry": True}
            self.front.send_multipart([client, *wire.Reply(meta).parts()])
            return
        key = (stream, header.frame_id if header.kind == wire.Kind.FRAME else "end")
        record.in_flight[key] = client
        self.stats.frames += header.kind == wire.Kind.FRAME
        self.back.send_multipart([record.identity, REQUEST, client, *body], copy=False)

    # -- loop -------------------------------------------------------------------------------------
    def _guarded(self, handle, parts: list) -> None:
        """Handle one message; whatever a peer sends, the broker goes on (the fault is counted)."""
        if len(parts) < 2:  # a ROUTER always prefixes the sender's identity; an empty body is nothing
            return self._malformed("a peer", "empty message")
        try:
            handle(parts)
        except (zmq.ZMQError, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
            log.exception("message handling failed")
            self._malformed("a peer", f"{type(e).__name__}: {e}")

    def serve(self, ready=None) -> None:
        if self.front is None:
            self.open()
        poller = zmq.Poller()
        poller.register(self.front, zmq.POLLIN)
        poller.register(self.back, zmq.POLLIN)
        if ready is not None:
            ready()
        self._running = True
        next_beat = time.monotonic() + HEARTBEAT_S
        try:
            while self._running:
                events = dict(poller.poll(int(HEARTBEAT_S * 1000 / 2)))
                if self.back in events:
                    messages, refused = recv_bounded(self.back, 64, 2 + MAX_REPLY_PARTS, MAX_REPLY_BYTES, envelope=1)
                    for _, why in refused:
                        self._malformed("an engine", why)
                    for parts in messages:
                        self._guarded(self._engine_message, parts)
                if self.front in events:
                    limit = wire.max_part_bytes(wire.DEFAULT_MAX_PIXELS) + 4096
                    messages, refused = recv_bounded(self.front, 64, 2, limit, envelope=1)
                    for client, why in refused:
                        self.stats.malformed += 1
                        self.front.send_multipart([client, *wire.Reply({"kind": wire.ReplyKind.REJECT,
                                                                         "reason": why}).parts()])
                    for parts in messages:
                        self._guarded(self._client_message, parts)
                now = time.monotonic()
                if now >= next_beat:
                    for identity in self.engines:
                        self.back.send_multipart([identity, HEARTBEAT])
                    next_beat = now + HEARTBEAT_S
                self._expire(now)
        finally:
            self.front.close(0)
            self.back.close(0)
            self.front = self.back = None


def _ready_info(rest: list) -> dict | None:
    """The JSON object of a READY message, or None when it is not one."""
    if not rest:
        return {}
    if len(rest) != 1 or len(rest[0].bytes) > MAX_READY_BYTES:
        return None
    try:
        info = json.loads(rest[0].bytes)
    except (ValueError, UnicodeDecodeError):
        return None
    return info if isinstance(info, dict) else None


def run_broker(frontend: str, backend: str, keys_dir: Path | None = None) -> int:
    """Entry point of ``facemonitor broker``: serve until SIGTERM or SIGINT."""
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s broker %(levelname)s %(message)s")
    broker = Broker(frontend, backend, keys_dir=keys_dir)
    signal.signal(signal.SIGTERM, lambda *_: broker.stop())
    broker.open()
    serve_until_interrupted(broker, f"broker ready: clients on {frontend}, engines on {backend}")
    log.info("broker stopped: %d frames, %d lost, %d engines lost, %d malformed", broker.stats.frames,
             broker.stats.lost, broker.stats.engines_lost, broker.stats.malformed)
    return 0
