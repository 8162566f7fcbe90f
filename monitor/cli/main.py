"""The ``facemonitor`` command line: builds the parser from the command modules and runs the chosen
command. Errors are one line on stderr starting with ``error:`` and exit code 2; no traceback reaches
the user (FACEMONITOR_DEBUG=1 shows it).
"""

from __future__ import annotations

import argparse
import os
import sys

from monitor import DISCLAIMER, __version__
from monitor.cli import analyze, app, bench, cnn, cohort, engine, fetch, keys, live, models, sessions
from monitor.cli.common import OneLineParser
from monitor.cli.parsing import options_anywhere
from monitor.errors import FacemonitorError

# Each adds its subcommands, in this order, with set_defaults(run=<function of the parsed arguments>).
# engine adds both "engine" and "broker".
COMMANDS = (analyze, live, app, bench, engine, keys, models, sessions, cnn, cohort, fetch)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="facemonitor", description=f"Real-time monitor of facial weakness. {DISCLAIMER}")
    p.add_argument("--version", action="version", version=f"facemonitor {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return options_anywhere(p)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except FacemonitorError as e:
        if os.environ.get("FACEMONITOR_DEBUG") == "1":
            raise
        return _fail(str(e))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the contract is one line, never a traceback
        if os.environ.get("FACEMONITOR_DEBUG") == "1":
            raise
        return _fail(f"{type(e).__name__}: {e} (set FACEMONITOR_DEBUG=1 for details)")


if __name__ == "__main__":
    sys.exit(main())
