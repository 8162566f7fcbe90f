"""CURVE key pairs for tcp endpoints: where they live, how they are made and read (files only, no sockets).

``facemonitor keys`` writes a folder (mode 0700) holding two key pairs in ZeroMQ's certificate format,
each secret file mode 0600:

- ``server.key`` / ``server.key_secret``: the engine's and the broker's identity; clients and engines
  that connect check it (``server.key``, the public half, is all a connecting machine needs of it);
- ``client.key`` / ``client.key_secret``: what capture clients and broker-connected engines present;
  ``authorized/`` holds the public keys a server accepts (``client.key`` to begin with; add more).

The folder is ``--keys DIR`` where a command offers it, else ``$FACEMONITOR_KEYS``, else ``keys`` in the
user's config directory. ipc:// and inproc:// endpoints are local-only and use no keys.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import zmq
import zmq.auth

from monitor.errors import EngineError

KEYS_ENV = "FACEMONITOR_KEYS"
SERVER, CLIENT, AUTHORIZED = "server", "client", "authorized"


def default_keys_dir() -> Path:
    env = os.environ.get(KEYS_ENV)
    return Path(env) if env else Path(platformdirs.user_config_dir("facemonitor")) / "keys"


def needs_keys(endpoint: str) -> bool:
    """Whether an endpoint leaves this machine's private sockets (tcp), so it must be authenticated."""
    return endpoint.startswith("tcp://")


@dataclass(frozen=True)
class ServerKeys:
    public: bytes
    secret: bytes
    authorized: frozenset  # public keys (z85 bytes) of the clients and engines allowed in


@dataclass(frozen=True)
class ClientKeys:
    public: bytes
    secret: bytes
    server_public: bytes


def make_keys(folder: Path | None = None, force: bool = False) -> Path:
    """Write new server and client key pairs into ``folder`` (default: ``default_keys_dir()``)."""
    folder = Path(folder) if folder else default_keys_dir()
    if (folder / f"{SERVER}.key_secret").exists() and not force:
        raise EngineError(f"keys already exist in {folder}; pass --force to replace them (every machine then "
                          "needs the new ones)")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    authorized = folder / AUTHORIZED
    shutil.rmtree(authorized, ignore_errors=True)
    authorized.mkdir(mode=0o700)
    for name in (SERVER, CLIENT):
        for suffix in (".key", ".key_secret"):
            (folder / f"{name}{suffix}").unlink(missing_ok=True)
        zmq.auth.create_certificates(folder, name)
    shutil.copyfile(folder / f"{CLIENT}.key", authorized / f"{CLIENT}.key")
    for path in (*folder.glob("*.key*"), *authorized.glob("*.key")):
        os.chmod(path, 0o600)
    os.chmod(authorized, 0o700)
    return folder


def _load(path: Path, secret: bool, folder: Path) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise EngineError(f"tcp endpoints need CURVE keys and {path} is missing; run `facemonitor keys` "
                          f"(or point --keys / {KEYS_ENV} at the folder it wrote, {folder} by default)")
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as e:
        raise EngineError(f"cannot read the key file {path}: {e}; make new keys with `facemonitor keys --force`")
    if secret and not secret_key:
        raise EngineError(f"{path} holds no secret key; make new keys with `facemonitor keys --force`")
    return public, secret_key


def load_server_keys(folder: Path | None = None) -> ServerKeys:
    folder = Path(folder) if folder else default_keys_dir()
    public, secret = _load(folder / f"{SERVER}.key_secret", True, folder)
    allowed = frozenset(_load(p, False, folder)[0] for p in sorted((folder / AUTHORIZED).glob("*.key")))
    if not allowed:
        raise EngineError(f"no authorized client keys in {folder / AUTHORIZED}; run `facemonitor keys`")
    return ServerKeys(public, secret, allowed)


def load_client_keys(folder: Path | None = None) -> ClientKeys:
    folder = Path(folder) if folder else default_keys_dir()
    public, secret = _load(folder / f"{CLIENT}.key_secret", True, folder)
    server_public, _ = _load(folder / f"{SERVER}.key", False, folder)
    return ClientKeys(public, secret, server_public)
