"""The cohort on Ray: one actor per worker, each holding a loaded engine (monitor.lab.cohort.worker),
fed tasks as actors come free; GPUs are requested as Ray resources for the GPU backends.

``--ray local`` starts a Ray runtime on this machine (loopback only, no dashboard) for testing; any
other value is the address of an existing cluster (``ray://head:10001`` or ``auto``). Ray is the
``cohort`` extra; without it this module raises a UsageError naming the extra.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Iterator

from monitor.errors import UsageError
from monitor.lab.cohort.worker import CohortWorker, WorkerSettings

GPU_BACKENDS = ("onnx-cuda", "tensorrt")


def require_ray():
    try:
        import ray  # the optional extra
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'facemonitor[cohort]'") from None
    return ray


class _Actor:
    """A CohortWorker living in a Ray actor process."""

    def __init__(self, settings: dict) -> None:
        self.worker = CohortWorker(WorkerSettings(**settings))

    def analyse(self, task: dict) -> dict:
        return self.worker.analyse(task)

    def close(self) -> None:
        self.worker.close()


def _init(ray, address: str, workers: int | None) -> bool:
    """Connect to (or start) Ray; True when this call started the runtime (and so shuts it down)."""
    if ray.is_initialized():
        return False
    if address == "local":
        ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, _node_ip_address="127.0.0.1")
        return True
    ray.init(address=address, log_to_driver=False, configure_logging=False)
    return False


def ray_outcomes(address: str, workers: int | None, backend: str, settings: WorkerSettings,
                 tasks: list[dict]) -> Iterator[dict]:
    ray = require_ray()
    if not tasks:
        return
    started = _init(ray, address, workers)
    try:
        n = max(1, min(len(tasks), workers or int(ray.cluster_resources().get("CPU", 1))))
        actor_cls = ray.remote(num_cpus=1, num_gpus=1 if backend in GPU_BACKENDS else 0)(_Actor)
        actors = [actor_cls.remote(asdict(settings)) for _ in range(n)]
        queue = list(tasks)
        running = {}
        for actor in actors:
            if queue:
                task = queue.pop(0)
                running[actor.analyse.remote(task)] = (actor, task)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            ref = ready[0]
            actor, task = running.pop(ref)
            try:
                yield ray.get(ref)
            except ray.exceptions.RayError as e:  # an actor that died: its task is recorded, the rest go on
                yield {"key": task["key"], "status": "incomplete", "session_id": None, "frames": 0,
                       "frames_with_face": 0, "seconds": 0.0, "error": f"Ray worker failed: {str(e).splitlines()[0]}"}
                actors.remove(actor)
                actor = actor_cls.remote(asdict(settings))
                actors.append(actor)
            if queue:
                task = queue.pop(0)
                running[actor.analyse.remote(task)] = (actor, task)
        try:
            ray.get([a.close.remote() for a in actors], timeout=60)
        except ray.exceptions.RayError:
            pass  # an actor's engine also stops by itself when the actor's process is gone
    finally:
        if started:
            ray.shutdown()
