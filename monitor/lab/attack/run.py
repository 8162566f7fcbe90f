"""Run the attack areas and tabulate their findings (pure tabulation separate from the probes)."""

import importlib
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from monitor.lab.attack import Finding

AREAS = ("transport", "app", "media", "store")


def run_attacks(areas: Iterable[str] = AREAS, scale: float = 1.0,
                log: Callable[[str], None] = lambda _m: None) -> list[Finding]:
    """Every finding of the named areas, each area in its own temporary folder (removed afterwards)."""
    findings: list[Finding] = []
    for area in areas:
        if area not in AREAS:
            raise ValueError(f"unknown attack area {area!r}; known: {', '.join(AREAS)}")
        module = importlib.import_module(f"monitor.lab.attack.{area}")
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"facemonitor-attack-{area}-") as tmp:
            found = module.attack(Path(tmp), scale)
        log(f"{area}: {len(found)} probes, {sum(f.failures for f in found)} failures, {time.monotonic() - t0:.0f} s")
        findings.extend(found)
    return findings


def markdown(findings: list[Finding]) -> str:
    """The summary table for docs/reliability.md."""
    rows = ["| area | probe | attempts | failures | measured | detail |", "|---|---|---:|---:|---|---|"]
    for f in findings:
        rows.append(f"| {f.area} | {f.probe} | {f.attempts} | {f.failures} | {f.measured} | {f.detail} |")
    total = sum(f.failures for f in findings)
    rows.append(f"\n{len(findings)} probes, {sum(f.attempts for f in findings)} attempts, {total} failures.")
    return "\n".join(rows)
