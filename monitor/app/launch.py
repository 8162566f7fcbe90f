"""``facemonitor app``: start the core, the UI and the server (``start_app``), with Gradio's
environment set before Gradio is imported (no analytics, its file cache inside the store), and
the Host names the app answers to."""

from __future__ import annotations

import os
import socket

from monitor.app.core import AppCore
from monitor.app.guard import WILDCARD_BINDS, HostPolicy, normal_name
from monitor.app.server import AppServer, build_http_app, is_loopback
from monitor.errors import UsageError
from monitor.store.db import Store


def prepare_gradio_env(store_root) -> None:
    """Before gradio is imported: no analytics or version check (nothing leaves this machine), and
    its file cache inside the store rather than the shared temp folder (it holds rendered plots and
    copies of kept video)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    cache = store_root / "app-cache"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(cache)


def host_policy(bind_host: str, extra: tuple[str, ...] = ()) -> HostPolicy:
    """The names the app answers to: loopback, the bound address, ``extra`` and the comma-separated
    FACEMONITOR_APP_HOSTS; on a wildcard bind (0.0.0.0, ::) also this machine's name and its
    addresses. UsageError for a name that is not a host name or address."""
    names = list(extra) + [n for n in os.environ.get("FACEMONITOR_APP_HOSTS", "").split(",") if n.strip()]
    if normal_name(bind_host) in WILDCARD_BINDS:
        names += _this_machine()
    try:
        return HostPolicy.for_bind(bind_host, tuple(names))
    except ValueError as e:
        raise UsageError(f"allowed hosts (FACEMONITOR_APP_HOSTS): {e}") from None


def _this_machine() -> list[str]:
    """This machine's host name, full name and the addresses they resolve to (what a LAN browser uses)."""
    names = {socket.gethostname(), socket.getfqdn()}
    for name in list(names):
        try:
            names.update(str(a[4][0]).split("%")[0] for a in socket.getaddrinfo(name, None))
        except OSError:
            pass
    return sorted(n for n in names if normal_name(n) not in (None, *WILDCARD_BINDS))


def start_app(config, host: str = "127.0.0.1", port: int = 7860, credentials=None, ssl=None,
              allowed_hosts: tuple[str, ...] = ()):
    """Core, UI and server, started; returns (core, server). Refuses a non-loopback address
    without credentials. The app answers only to the names of ``host_policy``."""
    if not is_loopback(host) and credentials is None:
        raise UsageError(f"binding {host} makes the app reachable from other machines: give credentials with "
                         "--auth-file FILE or FACEMONITOR_APP_AUTH=user:password (and preferably --tls-cert/--tls-key)")
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be 1–65535, got {port}")
    hosts = host_policy(host, tuple(allowed_hosts))
    with Store(config.store_root) as store:
        prepare_gradio_env(store.root)
    from monitor.app.ui import HEAD, build_app  # lazy: gradio, after prepare_gradio_env

    core = AppCore(config)
    try:
        blocks = build_app(core)
        http_app = build_http_app(core, blocks, credentials, head=HEAD, hosts=hosts)
        server = AppServer(http_app, host, port, ssl).start()
    except BaseException:
        core.close()
        raise
    return core, server
