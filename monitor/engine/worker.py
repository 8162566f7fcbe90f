"""An engine serving a broker instead of clients: ``facemonitor engine --broker tcp://host:5556``.

The engine's DEALER connects to the broker's backend, announces itself (READY), answers requests
with the same replies it gives clients directly, and exchanges heartbeats; when the broker goes
silent it reconnects with a fresh socket, backing off 1 s, 2 s, … 32 s between fresh sockets; it never
sleeps meanwhile: it keeps sending heartbeats (ZeroMQ reconnects the tcp connection underneath), so a
restarted broker hears it, answers WHO, and has it back at once (see ``monitor.transport.broker``).
Messages from the broker that do not follow the protocol are counted and dropped.
"""

from __future__ import annotations

import json
import logging
import time

import zmq

from engines.util import pid_alive
from monitor import __version__
from monitor.engine.service import MAX_BATCH, EngineService
from monitor.errors import EngineError
from monitor.transport import wire
from monitor.transport.broker import HEARTBEAT, HEARTBEAT_S, LIVENESS, READY, REPLY, REQUEST, WHO
from monitor.transport.client import recv_waiting
from monitor.transport.keys import load_client_keys, needs_keys
from monitor.transport.secure import secure_client

log = logging.getLogger("facemonitor.engine")

BACKOFF_MAX_S = 32.0


class EngineWorker:
    def __init__(self, service: EngineService, broker: str, keys_dir=None) -> None:
        self.service = service
        self.broker = broker
        self.keys_dir = keys_dir
        self.sock: zmq.Socket | None = None
        self.connected = False  # heard from the broker on this socket
        self.malformed = 0
        self.reconnects = 0

    def check_keys(self) -> None:
        """Raise EngineError now when the broker is on tcp and the client keys are missing."""
        if needs_keys(self.broker):
            load_client_keys(self.keys_dir)

    def _connect(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
        s = self.service.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVHWM, 64)
        # what the broker forwards (it takes frames up to wire.DEFAULT_MAX_PIXELS); the header check refuses more
        forwarded = wire.max_part_bytes(wire.DEFAULT_MAX_PIXELS)
        s.setsockopt(zmq.MAXMSGSIZE, max(self.service.limits.max_part_bytes, forwarded))
        try:
            secure_client(s, self.broker, self.keys_dir)
        except EngineError:
            s.close(0)
            raise
        s.connect(self.broker)
        self.sock = s
        self.connected = False
        self._announce()

    def _announce(self) -> None:
        info = {"engine": self.service.name, "backend": self.service.backend, "version": __version__}
        self._send([READY, json.dumps(info).encode()])

    def _send(self, parts: list) -> None:
        """Send without blocking: with the broker away the socket's queue fills, and what does not fit
        is dropped (the broker answers the client ``lost`` and the client resends)."""
        try:
            self.sock.send_multipart(parts, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass

    def _take(self, parts: list, clients: list, bodies: list) -> None:
        command = parts[0].bytes
        if command == REQUEST and 3 <= len(parts) <= 4:
            clients.append(parts[1])
            bodies.append(parts[2:])
        elif command == WHO and len(parts) == 1:
            self._announce()
        elif command != HEARTBEAT or len(parts) != 1:
            self.malformed += 1
            log.warning("dropped a malformed message from the broker (%d parts, command %r)", len(parts),
                        command[:16])

    def serve(self, ready=None) -> None:
        svc = self.service
        svc.start_running()
        self._connect()
        if ready is not None:
            ready()
        heard = last_socket = time.monotonic()
        next_beat = heard + HEARTBEAT_S
        backoff = 1.0
        try:
            while svc._running:
                events = self.sock.poll(int(HEARTBEAT_S * 1000 / 2), zmq.POLLIN)
                now = time.monotonic()
                if events:
                    clients, bodies = [], []
                    for parts in recv_waiting(self.sock, MAX_BATCH):
                        heard, backoff = now, 1.0
                        if not self.connected:
                            self.connected = True
                            log.info("connected to broker %s", self.broker)
                        self._take(parts, clients, bodies)
                    if bodies:
                        for client, reply in zip(clients, svc.handle_many(bodies)):
                            self._send([REPLY, client, *reply.parts()])
                elif now - heard > HEARTBEAT_S * LIVENESS and now - last_socket > backoff:
                    # a fresh socket at most every `backoff` seconds; heartbeats go on in between
                    log.warning("broker %s silent for %.1f s; new socket (next in %.0f s)", self.broker,
                                now - heard, min(backoff * 2, BACKOFF_MAX_S))
                    self.reconnects += 1
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    self._connect()
                    last_socket = now
                if now >= next_beat:
                    self._send([HEARTBEAT])
                    next_beat = now + HEARTBEAT_S
                svc.expire_idle(now)
                if svc.parent_pid and not pid_alive(svc.parent_pid):
                    log.warning("parent process %d is gone; stopping", svc.parent_pid)
                    break
        finally:
            svc.close_streams()
            if self.sock is not None:
                self.sock.close(0)
                self.sock = None
