"""``facemonitor cohort analyze``: every recording of a folder or manifest into a session, on all local
cores (a process pool) or on a Ray cluster, resumable and idempotent through the store's ledger.

The driver decides what to do (a recording already ``complete`` with the same content and settings
is skipped), marks each task ``running`` in the ledger before it is handed out and writes its
outcome as soon as it comes back, so a killed driver or worker loses nothing that finished; a task
whose worker died is recorded as ``incomplete`` with the reason and is done again by the next run.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from monitor import __version__
from monitor.errors import UsageError
from monitor.lab.cohort.source import Recording, read_source, settings_hash
from monitor.lab.cohort.worker import WorkerSettings, analyse_in_pool, init_pool_worker
from monitor.session.run import check_backend
from monitor.store.cohorts import CohortLedger
from monitor.store.db import Store


@dataclass(frozen=True)
class CohortOptions:
    source: Path
    store_root: Path | None = None
    cohort_id: str | None = None  # default: the source's name and a hash of its absolute path
    workers: int | None = None  # default: every local core
    ray: str | None = None  # a Ray cluster address, or "local" for a Ray runtime on this machine
    backend: str = "mediapipe"
    iris_mm: float | None = None
    progress: bool = True


@dataclass
class CohortReport:
    cohort_id: str
    store: str
    recordings: int
    done: list = field(default_factory=list)  # outcomes of this run, complete
    failed: list = field(default_factory=list)  # outcomes of this run that did not complete (with reasons)
    skipped: list = field(default_factory=list)  # keys already complete with the same content and settings
    frames: int = 0
    seconds: float = 0.0
    executor: str = ""

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict:
        return dict(asdict(self), frames_per_s=round(self.frames_per_s, 2))


def default_cohort_id(source: Path) -> str:
    resolved = str(Path(source).resolve())
    return f"{Path(source).stem or 'cohort'}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"


def _settings(opts: CohortOptions) -> dict:
    """What a session's numbers depend on; another value re-does the cohort's recordings."""
    return {"backend": opts.backend, "iris_mm": opts.iris_mm, "facemonitor": __version__}


def plan(ledger: CohortLedger, cohort_id: str, recordings: list[Recording], shash: str) -> tuple[list, list]:
    """(to do: [(recording, content hash)], skipped keys)."""
    todo, skipped = [], []
    for rec in recordings:
        if not rec.path.is_file():
            todo.append((rec, ""))  # the worker reports it missing; the ledger keeps the reason
            continue
        digest = rec.content_sha256()
        known = ledger.item(cohort_id, rec.key)
        if known is not None and known.status == "complete" and known.content_sha256 == digest \
                and known.settings_hash == shash:
            skipped.append(rec.key)
        else:
            todo.append((rec, digest))
    return todo, skipped


def run_cohort(opts: CohortOptions, log: Callable[[str], None] = print) -> CohortReport:
    recordings = read_source(opts.source)
    if opts.ray:
        from monitor.lab.cohort.ray_backend import require_ray  # lazy: Ray is an optional extra

        require_ray()  # refused before anything is marked in the ledger
    check_backend(opts.backend)  # likewise an unknown or uninstalled backend, once, not per recording
    cohort_id = opts.cohort_id or default_cohort_id(opts.source)
    settings = _settings(opts)
    shash = settings_hash(settings)
    with Store(opts.store_root) as store:
        ledger = CohortLedger(store)
        ledger.open_cohort(cohort_id, str(Path(opts.source).resolve()), settings)
        todo, skipped = plan(ledger, cohort_id, recordings, shash)
        report = CohortReport(cohort_id, str(store.root), len(recordings), skipped=skipped)
        for rec, digest in todo:
            ledger.start_item(cohort_id, rec.key, rec.subject, rec.labels, digest, shash)
        worker = WorkerSettings(str(store.root), opts.backend, opts.iris_mm)
        tasks = [{"cohort_id": cohort_id, "key": rec.key, "path": str(rec.path), "subject": rec.subject,
                  "steps_file": str(rec.steps_file) if rec.steps_file else None} for rec, _ in todo]
        log(f"cohort {cohort_id}: {len(recordings)} recordings, {len(skipped)} already done, {len(tasks)} to analyse")
        t0 = time.monotonic()
        outcomes = _ray_outcomes(opts, worker, tasks) if opts.ray else _pool_outcomes(opts, worker, tasks)
        report.executor = f"ray ({opts.ray})" if opts.ray else f"process pool ({_workers(opts, len(tasks))} workers)"
        for out in _with_progress(outcomes, len(tasks), opts.progress, t0, report):
            ledger.finish_item(cohort_id, out["key"], out["status"], out["session_id"], out["error"], out["frames"],
                               round(out["seconds"], 3))
            (report.done if out["status"] == "complete" else report.failed).append(out)
            report.frames += out["frames"]
        report.seconds = round(time.monotonic() - t0, 3)
    return report


def _workers(opts: CohortOptions, n_tasks: int) -> int:
    wanted = opts.workers or os.cpu_count() or 1
    if wanted < 1:
        raise UsageError(f"--workers must be at least 1, got {wanted}")
    return max(1, min(wanted, n_tasks))


def _pool_outcomes(opts: CohortOptions, worker: WorkerSettings, tasks: list[dict],
                   tries: int = 2) -> Iterator[dict]:
    """Outcomes as they finish, from a pool of worker processes (each with its engine). When a worker
    dies, the pool breaks and every task it had not finished is tried again in a fresh pool; a task
    still unfinished after ``tries`` pools is recorded as incomplete with the reason."""
    pending, attempts = list(tasks), {t["key"]: 0 for t in tasks}
    while pending:
        for t in pending:
            attempts[t["key"]] += 1
        broken = []
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that holds threads and sockets
        with cf.ProcessPoolExecutor(_workers(opts, len(pending)), mp_context=ctx, initializer=init_pool_worker,
                                    initargs=(asdict(worker),)) as pool:
            futures = {pool.submit(analyse_in_pool, t): t for t in pending}
            for fut in cf.as_completed(futures):
                task = futures[fut]
                try:
                    yield fut.result()
                except cf.process.BrokenProcessPool:
                    broken.append(task)
                except Exception as e:  # an unexpected error in the worker: recorded, the cohort goes on
                    yield _failed(task, f"{type(e).__name__}: {e}")
        pending = [t for t in broken if attempts[t["key"]] < tries]
        for task in broken:
            if attempts[task["key"]] >= tries:
                yield _failed(task, f"a worker process died while analysing it ({tries} tries)", status="incomplete")


def _failed(task: dict, reason: str, status: str = "failed") -> dict:
    return {"key": task["key"], "status": status, "session_id": None, "error": reason, "frames": 0,
            "frames_with_face": 0, "seconds": 0.0}


def _ray_outcomes(opts: CohortOptions, worker: WorkerSettings, tasks: list[dict]) -> Iterator[dict]:
    from monitor.lab.cohort.ray_backend import ray_outcomes  # lazy: Ray is an optional extra

    yield from ray_outcomes(opts.ray, opts.workers, opts.backend, worker, tasks)


def _with_progress(outcomes: Iterator[dict], total: int, show: bool, t0: float, report: CohortReport) -> Iterator[dict]:
    """Outcomes passed through, with a progress bar: recordings done, frames per second, time left."""
    if not show or total == 0:
        yield from outcomes
        return
    from tqdm import tqdm  # lazy: only a terminal run draws a bar

    frames = 0
    with tqdm(total=total, unit="rec", file=sys.stderr, dynamic_ncols=True) as bar:
        for out in outcomes:
            frames += out["frames"]
            elapsed = max(time.monotonic() - t0, 1e-6)
            bar.set_postfix_str(f"{frames / elapsed:.1f} frames/s, {len(report.failed)} failed")
            bar.update(1)
            yield out
