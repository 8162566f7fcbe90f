"""CURVE on tcp sockets: a server socket gets the server key pair and a ZAP authenticator thread (one
per ZeroMQ context) that admits only the authorized public keys; a connecting socket gets the client
key pair and the server's public key, so it talks only to the real server. ipc/inproc sockets are
left alone (local-only; their folders are private)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator

from monitor.transport.keys import load_client_keys, load_server_keys, needs_keys

log = logging.getLogger("facemonitor.auth")


class _Allowed:
    """The ZAP credentials check: a client's public key must be one of the authorized ones."""

    def __init__(self) -> None:
        self.keys: set = set()
        self.denied = 0

    def callback(self, domain: str, key: bytes) -> bool:  # key: z85-encoded, as in the key files
        ok = key in self.keys
        if not ok:
            self.denied += 1
            log.warning("refused a connection with an unknown CURVE key")
        return ok


_AUTH: dict = {}  # id(context) → (context, ThreadAuthenticator, _Allowed)
_LOCK = threading.Lock()


def authenticator(ctx: zmq.Context) -> _Allowed:
    """The context's ZAP check, started on first use."""
    with _LOCK:
        entry = _AUTH.get(id(ctx))
        if entry is None or entry[0] is not ctx:
            auth = ThreadAuthenticator(ctx, log=logging.getLogger("facemonitor.zap"))
            auth.start()
            allowed = _Allowed()
            auth.configure_curve_callback("*", credentials_provider=allowed)
            entry = _AUTH[id(ctx)] = (ctx, auth, allowed)
        return entry[2]


def secure_server(sock: zmq.Socket, endpoint: str, keys_dir: Path | None = None) -> bool:
    """Make ``sock`` (not yet bound) a CURVE server when ``endpoint`` is tcp; True when it did."""
    if not needs_keys(endpoint):
        return False
    keys = load_server_keys(keys_dir)
    authenticator(sock.context).keys.update(keys.authorized)
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_server = True
    return True


def secure_client(sock: zmq.Socket, endpoint: str, keys_dir: Path | None = None) -> bool:
    """Give ``sock`` (not yet connected) the client keys and the server's public key when ``endpoint`` is tcp."""
    if not needs_keys(endpoint):
        return False
    keys = load_client_keys(keys_dir)
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_serverkey = keys.server_public
    return True


def denied_total(ctx: zmq.Context) -> int:
    """Connections the context's authenticator refused so far (0 without one)."""
    entry = _AUTH.get(id(ctx))
    return entry[2].denied if entry is not None and entry[0] is ctx else 0
