"""Run the attack suite: `python scripts/attack.py [--areas transport,app,media,store] [--scale 1.0] [--json OUT]`.
Prints the Markdown table kept in docs/reliability.md; exits 1 when any probe found a failure."""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.lab.attack.run import AREAS, markdown, run_attacks


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--areas", default=",".join(AREAS), help=f"comma-separated areas (default: {','.join(AREAS)})")
    p.add_argument("--scale", type=float, default=1.0, help="multiplies every probe count (default 1.0)")
    p.add_argument("--json", type=Path, help="also write the findings here as JSON")
    a = p.parse_args()
    if a.scale <= 0:
        p.error("--scale must be above 0")
    findings = run_attacks([s.strip() for s in a.areas.split(",") if s.strip()], a.scale,
                           log=lambda m: print(m, file=sys.stderr, flush=True))
    if a.json:
        a.json.write_text(json.dumps([f.to_dict() for f in findings], indent=1))
    print(markdown(findings))
    return 1 if any(f.failures for f in findings) else 0


if __name__ == "__main__":
    raise SystemExit(main())
