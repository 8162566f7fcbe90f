"""``facemonitor app``: the guided check, results and review in a local web page, served until
interrupted."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engines.base import check_backend
from monitor import DISCLAIMER
from monitor.cli.common import add_session_args, cnn_options, port
from monitor.errors import UsageError
from monitor.store.people import check_person


def add_parser(sub) -> None:
    ap = sub.add_parser("app", help="the guided check, results and review in a local web page")
    ap.add_argument("--source",
                    help="camera index, file or URL (default: camera 0, or the sample video if there is none)")
    ap.add_argument("--port", type=port, default=7860, help="port (default 7860)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1; any other address requires --auth-file)")
    ap.add_argument("--protocol", default="mg24", help="mg24 (default), short, ptosis, mg24+ptosis, or a .toml/.json protocol file")
    ap.add_argument("--auth-file", type=Path, help="file holding user:password (required off loopback; "
                                                   "or set FACEMONITOR_APP_AUTH)")
    ap.add_argument("--tls-cert", type=Path, help="TLS certificate (PEM), for serving other devices over https")
    ap.add_argument("--tls-key", type=Path, help="TLS private key (PEM)")
    add_session_args(ap)
    ap.set_defaults(run=run_app)


def _tls(args: argparse.Namespace) -> tuple[Path, Path] | None:
    """The certificate and key to serve https with, or None for http."""
    if not (args.tls_cert or args.tls_key):
        return None
    if not (args.tls_cert and args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    for p in (args.tls_cert, args.tls_key):
        if not p.is_file():
            raise UsageError(f"{p}: no such file")
    return args.tls_cert, args.tls_key


def check_source(source: str | None) -> None:
    """Refuse a missing file or camera before the page is served (not only after Start); a URL is
    checked when a check starts, since opening one can take seconds."""
    from monitor.capture.sources import open_capture, parse_source  # lazy: cv2

    if source is None:
        return  # camera 0, or the sample video when there is none
    spec = parse_source(source)
    if spec.kind in ("file", "camera"):
        open_capture(spec).release()


def run_app(args: argparse.Namespace) -> int:
    if args.person is not None:
        check_person(args.person)
    if args.engine is None:
        check_backend(args.backend)
    from monitor.app.core import AppConfig  # lazy: numba, cv2, zmq, pyarrow (the session and store)
    from monitor.app.launch import start_app  # lazy: fastapi (and gradio when the page is built)
    from monitor.app.server import read_credentials  # lazy: fastapi
    from monitor.session.run import check_cnn  # lazy: numba, cv2, zmq (the session loop)

    credentials = read_credentials(args.auth_file)
    ssl = _tls(args)
    config = AppConfig(store_root=args.store, source=args.source, protocol=args.protocol, backend=args.backend,
                       engine_endpoint=args.engine, iris_mm=args.iris_mm, cnn=cnn_options(args, "live"))
    if config.cnn is not None:  # refuse an untrained or uncarded model before the page opens
        check_cnn(config.cnn)
    check_source(args.source)  # a missing file or camera: one error line, never a page that fails at Start
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
