"""``facemonitor keys``: make the CURVE key pairs that every tcp endpoint (engine, broker, client) uses."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    k = sub.add_parser("keys", help="make the CURVE keys that authenticate and encrypt tcp endpoints")
    k.add_argument("--dir", type=Path, default=None,
                   help="folder for the keys (default: $FACEMONITOR_KEYS, else keys/ in the user config dir)")
    k.add_argument("--force", action="store_true", help="replace existing keys")
    k.set_defaults(run=run_keys_command)


def run_keys_command(args: argparse.Namespace) -> int:
    from monitor.transport.keys import make_keys  # lazy: zmq

    folder = make_keys(args.dir, force=args.force)
    print(f"keys written to {folder} (folder 0700, files 0600)")
    print("copy the folder to every machine that runs an engine, a broker or a client over tcp, "
          "or point --keys / FACEMONITOR_KEYS at it")
    return 0
