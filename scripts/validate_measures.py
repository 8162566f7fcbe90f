"""Reproduce docs/validation.md: `python scripts/validate_measures.py [--seconds 30] [--json OUT]`."""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.lab.validation import markdown, run_validation


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--quick", action="store_true", help="fewer cases, for a fast look")
    p.add_argument("--json", type=Path, help="also write the full results here")
    a = p.parse_args()
    res = run_validation(a.seconds, a.fps, a.quick, log=lambda m: print(m, file=sys.stderr, flush=True))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
