"""The live 3D-CNN in a process of its own, at the lowest CPU priority, so it never starves the landmarks.

On a CPU-only machine a clip takes about a second of one core. Run on a thread of the engine process it
shares that process's GIL with the landmark path: a low-priority thread that holds the GIL and is then
preempted makes the landmark path wait for it. In its own process it has its own GIL, and the kernel
runs it only when a core has nothing better to do (``SCHED_IDLE``, else nice +19).

The two processes talk over the child's stdin and stdout in length-prefixed messages: a JSON header
(8-byte prefix: header length, payload length, little-endian) and a raw uint8 payload (the clip's pixels,
no pickling). The child answers each clip with its probability and inference time, or with an error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import struct
import subprocess
import sys
import threading
import time

import numpy as np

PREFIX = struct.Struct("<II")
MAX_HEADER = 1 << 16

log = logging.getLogger("facemonitor.cnn")


class WorkerError(RuntimeError):
    """The clip process failed to start, answered with an error, or is gone."""


def write_message(out, meta: dict, payload: bytes | memoryview = b"") -> None:
    head = json.dumps(meta).encode()
    out.write(PREFIX.pack(len(head), len(payload)))
    out.write(head)
    if len(payload):
        out.write(payload)
    out.flush()


def _read_exact(inp, n: int) -> bytes:
    data = inp.read(n) if n else b""
    if len(data) != n:
        raise EOFError(f"the clip process's pipe closed ({len(data)} of {n} bytes)")
    return data


def read_message(inp) -> tuple[dict, bytes]:
    """One message; EOFError when the other side is gone, ValueError when it is malformed."""
    n_head, n_payload = PREFIX.unpack(_read_exact(inp, PREFIX.size))
    if n_head > MAX_HEADER:
        raise ValueError(f"clip message header of {n_head} bytes (at most {MAX_HEADER})")
    meta = json.loads(_read_exact(inp, n_head))
    if not isinstance(meta, dict):
        raise ValueError("clip message header is not a JSON object")
    return meta, _read_exact(inp, n_payload)


def lower_priority(nice: int = 19) -> str:
    """Make the calling process run only when a core is idle (SCHED_IDLE where the OS has it) and at
    niceness ``nice``; returns what it could do."""
    done = []
    try:
        os.nice(max(0, nice - os.nice(0)))
        done.append(f"nice {os.nice(0)}")
    except OSError:
        pass
    policy = getattr(os, "SCHED_IDLE", None)
    if policy is not None:
        try:
            os.sched_setscheduler(0, policy, os.sched_param(0))
            done.append("SCHED_IDLE")
        except OSError:
            pass
    return ", ".join(done) or "unchanged"


def serve(inp, out, path: str, backend: str, threads: int, nice: int) -> int:
    """The child's loop: activate the runner, say ready, answer clips until a stop message or EOF."""
    from engines.clip import create_clip_runner  # lazy: onnxruntime (or TensorRT) loads in the child only

    try:
        runner = create_clip_runner(path, backend, threads, spin=False).activate()
    except Exception as e:  # the parent turns this into one clear error
        write_message(out, {"error": f"{type(e).__name__}: {e}"})
        return 1
    priority = lower_priority(nice)  # after loading, so that the engine's start does not wait on a busy machine
    write_message(out, {"ready": True, "pid": os.getpid(), "priority": priority, "backend": runner.name})
    with runner:
        while True:
            try:
                meta, payload = read_message(inp)
            except EOFError:
                return 0
            except ValueError as e:  # the framing is lost: nothing after this can be trusted
                print(f"error: clip process: {e}", file=sys.stderr)
                return 1
            if meta.get("stop"):
                return 0
            try:
                clip = np.frombuffer(payload, np.uint8).reshape(meta["shape"])
                t0 = time.perf_counter()
                answer = {"p": float(runner.infer(clip)[0]), "ms": (time.perf_counter() - t0) * 1e3}
            except Exception as e:  # one bad clip is answered, the process stays
                answer = {"error": f"{type(e).__name__}: {e}"}
            try:
                write_message(out, answer)
            except OSError:  # the engine is gone: nothing is left to answer
                return 0


class ClipProcess:
    """The parent's handle on the clip process: ``infer`` sends one clip and waits for its answer
    (the calling thread waits on a pipe, holding no GIL and no core)."""

    def __init__(self, path, backend: str = "onnxruntime-cpu", threads: int = 1, nice: int = 19) -> None:
        cmd = [sys.executable, "-m", "monitor.cnn.worker", str(path), "--backend", backend,
               "--threads", str(threads), "--nice", str(nice)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._write = threading.Lock()  # one message at a time on the pipe (a stop never cuts into a clip)
        try:
            meta, _ = read_message(self.proc.stdout)
        except (EOFError, ValueError) as e:
            self.close()
            raise WorkerError(f"the clip process did not start: {e}") from None
        if "error" in meta:
            self.close()
            raise WorkerError(f"the clip process could not load {path}: {meta['error']}")
        self.pid, self.priority = meta["pid"], meta["priority"]
        log.info("clip process %s runs %s at %s", self.pid, meta["backend"], self.priority)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def infer(self, frames: np.ndarray) -> tuple[float, float]:
        """(probability of class 1, inference ms) for one uint8 clip (T, S, S, 3)."""
        frames = np.ascontiguousarray(frames, np.uint8)
        try:
            with self._write:
                write_message(self.proc.stdin, {"shape": list(frames.shape)}, memoryview(frames).cast("B"))
            meta, _ = read_message(self.proc.stdout)
        except (EOFError, OSError, ValueError) as e:
            raise WorkerError(f"the clip process is gone ({e}; exit code {self.proc.poll()})") from None
        if "error" in meta:
            raise WorkerError(meta["error"])
        return float(meta["p"]), float(meta["ms"])

    def close(self, wait_s: float = 5.0) -> None:
        """Ask the process to stop (it finishes the clip it runs), kill it after ``wait_s``; a thread
        waiting in ``infer`` then gets its answer or a WorkerError."""
        if self.proc.poll() is None and self._write.acquire(timeout=wait_s):
            try:
                write_message(self.proc.stdin, {"stop": True})
            except OSError:
                pass
            finally:
                self._write.release()
        try:
            self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m monitor.cnn.worker", description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--backend", default="onnxruntime-cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nice", type=int, default=19)
    args = ap.parse_args(argv)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the protocol only; stray prints go to the log
    return serve(inp, out, args.model, args.backend, args.threads, args.nice)


if __name__ == "__main__":
    sys.exit(main())
