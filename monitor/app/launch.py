"""``facemonitor app``: start the core, the UI and the server (``start_app``), with Gradio's
environment set before Gradio is imported (no analytics, its file cache inside the store)."""

from __future__ import annotations

import os

from monitor.app.core import AppCore
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


def start_app(config, host: str = "127.0.0.1", port: int = 7860, credentials=None, ssl=None):
    """Core, UI and server, started; returns (core, server). Refuses a non-loopback address
    without credentials."""
    if not is_loopback(host) and credentials is None:
        raise UsageError(f"binding {host} makes the app reachable from other machines: give credentials with "
                         "--auth-file FILE or FACEMONITOR_APP_AUTH=user:password (and preferably --tls-cert/--tls-key)")
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be 1–65535, got {port}")
    with Store(config.store_root) as store:
        prepare_gradio_env(store.root)
    from monitor.app.ui import HEAD, build_app  # lazy: gradio, after prepare_gradio_env

    core = AppCore(config)
    try:
        blocks = build_app(core)
        http_app = build_http_app(core, blocks, credentials, head=HEAD)
        server = AppServer(http_app, host, port, ssl).start()
    except BaseException:
        core.close()
        raise
    return core, server
