"""The entry point of ``facemonitor engine``: an engine serving clients directly, or a broker."""

from __future__ import annotations

import logging
import signal

from engines.util import serve_until_interrupted
from monitor import __version__
from monitor.engine.options import CnnOptions, EngineLimits
from monitor.engine.service import EngineService
from monitor.engine.worker import EngineWorker

log = logging.getLogger("facemonitor.engine")


def run_engine(bind: str, control: str | None, backend: str, iris_mm: float, parent_pid: int | None = None,
               cnn: CnnOptions | None = None, broker: str | None = None, limits: EngineLimits | None = None,
               keys_dir=None) -> int:
    """Entry point of ``facemonitor engine``: serve clients on ``bind`` (or the broker at ``broker``)
    until STOP, SIGTERM, SIGINT or the parent's exit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s engine %(levelname)s %(message)s")
    service = EngineService(bind, control, backend=backend, iris_mm=iris_mm, parent_pid=parent_pid, cnn=cnn,
                            limits=limits, keys_dir=keys_dir)
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    if broker:
        worker = EngineWorker(service, broker, keys_dir)
        worker.check_keys()  # before the model loads: a tcp broker without keys is refused at once
        service.warm_up()
        log.info("engine %s %s ready for broker %s (backend %s)", __version__, service.name, broker, backend)
        serve_until_interrupted(worker, f"engine ready for broker {broker}")
    else:
        service.open()
        service.warm_up()
        log.info("engine %s ready on %s (backend %s)", __version__, bind, backend)
        serve_until_interrupted(service, f"engine ready on {bind}")
    log.info("engine stopped: %d frames in %d batches, %d rejected", service.stats.frames, service.stats.batches,
             service.stats.rejected)
    return 0
