"""``facemonitor app``: start the core, the UI and the server; serve until interrupted."""

from __future__ import annotations

import os
import sys
import time

from .app_server import is_loopback, read_credentials
from .errors import UsageError


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
    from .app_core import AppCore
    from .store import Store

    with Store(config.store_root) as store:
        prepare_gradio_env(store.root)
    from .app import HEAD, build_app
    from .app_server import AppServer, build_http_app

    core = AppCore(config)
    try:
        blocks = build_app(core)
        http_app = build_http_app(core, blocks, credentials, head=HEAD)
        server = AppServer(http_app, host, port, ssl).start()
    except BaseException:
        core.close()
        raise
    return core, server


def run_app(args) -> int:
    from .app_core import AppConfig
    from .cli import DISCLAIMER, cnn_options

    credentials = read_credentials(args.auth_file)
    ssl = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise UsageError("--tls-cert and --tls-key go together")
        for p in (args.tls_cert, args.tls_key):
            if not p.is_file():
                raise UsageError(f"{p}: no such file")
        ssl = (args.tls_cert, args.tls_key)
    config = AppConfig(store_root=args.store, source=args.source, protocol=args.protocol, backend=args.backend,
                       engine_endpoint=args.engine, iris_mm=args.iris_mm, cnn=cnn_options(args, "live"))
    if config.cnn is not None:  # refuse an untrained or uncarded model before the page opens
        from .pipeline import check_cnn

        check_cnn(config.cnn)
    core, server = start_app(config, args.host, args.port, credentials, ssl)
    scheme = "https" if ssl else "http"
    print(f"facemonitor app: {scheme}://{args.host}:{args.port}/  ({core.source_note}; store {core.store_root})",
          file=sys.stderr, flush=True)
    print(DISCLAIMER, file=sys.stderr, flush=True)
    try:
        while server.thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        core.close()
        server.stop()
    return 0
