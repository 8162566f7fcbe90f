"""``facemonitor app``: the guided check in a local web page, served until interrupted."""

from __future__ import annotations

import sys
import time

from monitor.app.launch import start_app
from monitor.app.server import read_credentials
from monitor.errors import UsageError


def run_app(args) -> int:
    from monitor import DISCLAIMER
    from monitor.app.core import AppConfig
    from monitor.cli.common import cnn_options

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
        from monitor.session.run import check_cnn

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
