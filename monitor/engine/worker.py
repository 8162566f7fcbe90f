"""An engine serving a broker instead of clients: ``facemonitor engine --broker tcp://host:5556``.

The engine's DEALER connects to the broker's backend, announces itself (READY), answers requests
with the same replies it gives clients directly, and exchanges heartbeats; when the broker goes
silent it reconnects with a fresh socket, backing off 1 s, 2 s, … 32 s (see ``monitor.transport.broker``).
"""

from __future__ import annotations

import json
import logging
import time

import zmq

from engines.util import pid_alive
from monitor import __version__
from monitor.engine.service import MAX_BATCH, EngineService
from monitor.transport import wire
from monitor.transport.broker import HEARTBEAT, HEARTBEAT_S, LIVENESS, READY, REPLY, REQUEST, WHO
from monitor.transport.client import recv_waiting

log = logging.getLogger("facemonitor.engine")

BACKOFF_MAX_S = 32.0


class EngineWorker:
    def __init__(self, service: EngineService, broker: str) -> None:
        self.service = service
        self.broker = broker
        self.sock: zmq.Socket | None = None
        self.connected = False  # heard from the broker on this socket

    def _connect(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
        s = self.service.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVHWM, 64)
        s.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES)
        s.connect(self.broker)
        self.sock = s
        self.connected = False
        self._announce()

    def _announce(self) -> None:
        info = {"engine": self.service.name, "backend": self.service.backend, "version": __version__}
        self.sock.send_multipart([READY, json.dumps(info).encode()])

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while self.service._running and time.monotonic() < end:
            time.sleep(0.05)

    def serve(self, ready=None) -> None:
        svc = self.service
        svc._running = True
        self._connect()
        if ready is not None:
            ready()
        heard = time.monotonic()
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
                        command = parts[0].bytes
                        if command == REQUEST and len(parts) >= 3:
                            clients.append(parts[1])
                            bodies.append(parts[2:])
                        elif command == WHO:
                            self._announce()
                    if bodies:
                        for client, reply in zip(clients, svc.handle_many(bodies)):
                            self.sock.send_multipart([REPLY, client, *reply.parts()], copy=False)
                elif now - heard > HEARTBEAT_S * LIVENESS:
                    log.warning("broker %s silent for %.1f s; reconnecting in %.0f s", self.broker, now - heard,
                                backoff)
                    self._wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    self._connect()
                    heard = time.monotonic()
                if now >= next_beat:
                    self.sock.send(HEARTBEAT)
                    next_beat = now + HEARTBEAT_S
                if svc.parent_pid and not pid_alive(svc.parent_pid):
                    log.warning("parent process %d is gone; stopping", svc.parent_pid)
                    break
        finally:
            svc.close_streams()
            if self.sock is not None:
                self.sock.close(0)
                self.sock = None
