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
  socket, backing off from 1 s to 32 s (``monitor.engine.worker``); a broker that does not know an
  engine (it restarted) answers it with WHO, and the engine announces itself again.

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

import zmq

from engines.util import serve_until_interrupted
from monitor import __version__
from monitor.errors import EngineError
from monitor.transport import wire
from monitor.transport.client import recv_waiting

log = logging.getLogger("facemonitor.broker")

HEARTBEAT_S = 0.5
LIVENESS = 4  # heartbeats missed before a peer counts as gone
READY, HEARTBEAT, REQUEST, REPLY, WHO = b"READY", b"HEARTBEAT", b"REQUEST", b"REPLY", b"WHO"


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


class Broker:
    def __init__(self, frontend: str, backend: str, ctx: zmq.Context | None = None) -> None:
        self.frontend_endpoint, self.backend_endpoint = frontend, backend
        self.ctx = ctx or zmq.Context.instance()
        self.engines: OrderedDict[bytes, EngineRecord] = OrderedDict()
        self.owner: dict = {}  # stream id (bytes) → engine identity
        self.stats = BrokerStats()
        self._running = False
        self.front = self.back = None

    def open(self) -> None:
        front = self.ctx.socket(zmq.ROUTER)
        back = self.ctx.socket(zmq.ROUTER)
        for s in (front, back):
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES)
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
    def _engine_message(self, parts: list) -> None:
        identity, command, rest = parts[0].bytes, parts[1].bytes, parts[2:]
        record = self.engines.get(identity)
        now = time.monotonic()
        if command == READY:
            try:
                info = json.loads(bytes(rest[0].bytes)) if rest else {}
            except ValueError:
                info = {}
            if record is not None:  # a reconnect under the same identity: what it held is gone
                self._drop(record, "reconnected")
            record = EngineRecord(identity, str(info.get("engine", identity.hex())), str(info.get("backend", "?")),
                                  now + HEARTBEAT_S * LIVENESS)
            self.engines[identity] = record
            log.info("engine %s (%s) joined; %d engines", record.name, record.backend, len(self.engines))
            return
        if record is None:  # not (or no longer) registered, e.g. after a broker restart: ask who it is
            self.back.send_multipart([identity, WHO])
            return
        record.expiry = now + HEARTBEAT_S * LIVENESS
        if command == REPLY and len(rest) >= 2:
            client, reply = rest[0].bytes, rest[1:]
            try:
                meta = json.loads(bytes(reply[0].bytes))
            except ValueError:
                meta = {}
            meta = meta if isinstance(meta, dict) else {}
            key = (meta.get("stream"), meta.get("frame"))
            if meta.get("kind") == wire.ReplyKind.RESULT:
                record.in_flight.pop(key, None)
                record.frames += 1
            elif meta.get("kind") == wire.ReplyKind.END:
                record.streams.discard(meta.get("stream"))
                self.owner.pop(meta.get("stream"), None)
                record.in_flight.pop((meta.get("stream"), "end"), None)
            else:  # a reject names no frame; free the oldest of the client's frames on this engine
                for k, c in list(record.in_flight.items()):
                    if c == client:
                        record.in_flight.pop(k)
                        break
            self.front.send_multipart([client, *reply], copy=False)

    def _drop(self, record: EngineRecord, why: str) -> None:
        self.engines.pop(record.identity, None)
        self.stats.engines_lost += 1
        for (stream, frame), client in record.in_flight.items():
            self.stats.lost += 1
            meta = {"kind": wire.ReplyKind.LOST, "stream": stream, "frame": None if frame == "end" else frame,
                    "end": frame == "end", "engine": record.name, "reason": f"engine {record.name} {why}"}
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
            header = wire.FrameHeader.unpack(body[0].buffer) if body else None
        except wire.WireError as e:
            header, error = None, str(e)
        else:
            error = "empty message"
        if header is None:
            self.front.send_multipart([client, *wire.Reply({"kind": wire.ReplyKind.REJECT, "reason": error}).parts()])
            return
        stream = str(header.stream)
        if header.kind == wire.Kind.PING:
            meta = {"kind": wire.ReplyKind.PONG, "ping": stream, "version": __version__, "broker": True,
                    "engines": len(self.engines), "engine_names": [r.name for r in self.engines.values()],
                    "backend": next(iter(self.engines.values())).backend if self.engines else None,
                    "frames": self.stats.frames, "lost": self.stats.lost, "cnn": None}
            self.front.send_multipart([client, *wire.Reply(meta).parts()])
            return
        if header.kind == wire.Kind.END and stream not in self.owner:
            meta = {"kind": wire.ReplyKind.END, "stream": stream, "cnn": [], "frames": 0, "frames_with_face": 0}
            self.front.send_multipart([client, *wire.Reply(meta).parts()])
            return
        record = self._pick(stream)
        if record is None:
            self.stats.lost += header.kind == wire.Kind.FRAME
            meta = {"kind": wire.ReplyKind.LOST, "stream": stream, "frame": header.frame_id, "engine": None,
                    "reason": "no engine is connected to the broker"}
            self.front.send_multipart([client, *wire.Reply(meta).parts()])
            return
        key = (stream, header.frame_id if header.kind == wire.Kind.FRAME else "end")
        record.in_flight[key] = client
        self.stats.frames += header.kind == wire.Kind.FRAME
        self.back.send_multipart([record.identity, REQUEST, client, *body], copy=False)

    # -- loop -------------------------------------------------------------------------------------
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
                for sock, handle in ((self.back, self._engine_message), (self.front, self._client_message)):
                    if sock in events:
                        for parts in recv_waiting(sock, 64):
                            if len(parts) >= 2:  # a ROUTER always prefixes the sender's identity
                                handle(parts)
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


def run_broker(frontend: str, backend: str) -> int:
    """Entry point of ``facemonitor broker``: serve until SIGTERM or SIGINT."""
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s broker %(levelname)s %(message)s")
    broker = Broker(frontend, backend)
    signal.signal(signal.SIGTERM, lambda *_: broker.stop())
    broker.open()
    serve_until_interrupted(broker, f"broker ready: clients on {frontend}, engines on {backend}")
    log.info("broker stopped: %d frames, %d lost, %d engines lost", broker.stats.frames, broker.stats.lost,
             broker.stats.engines_lost)
    return 0
