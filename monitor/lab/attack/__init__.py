"""A repeatable attack suite: bounded probes, on loopback and ipc only, that try to crash, exhaust or fool
the engine, broker, app, media readers and store, and count what got through.

Each area is one module here (`transport`, `app`, `media`, `store`) with a function
`attack(workdir: Path, scale: float) -> list[Finding]`; `scale` multiplies every count (1.0 is the
documented run, small values a quick one). `run.run_attacks` runs the areas and tabulates them;
`scripts/attack.py` is its command line and docs/reliability.md holds the latest table.
"""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    """One probe's outcome. `failures` counts attempts where the system crashed, lost or forged data,
    ended a session `complete` wrongly, or served a request it should have refused: the suite's goal is 0."""
    area: str
    probe: str
    attempts: int
    failures: int
    measured: str = ""   # a figure that is not a pass/fail count, e.g. "engine RSS +38 MB after 1000 streams"
    detail: str = ""     # what a failure looked like, for the first few

    def to_dict(self) -> dict:
        return asdict(self)


def scaled(n: int, scale: float, minimum: int = 1) -> int:
    """A probe count multiplied by the run's scale, never below `minimum`."""
    return max(minimum, round(n * scale))
