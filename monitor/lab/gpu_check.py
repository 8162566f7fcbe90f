"""``facemonitor bench --gpu`` / ``scripts/gpu_check.sh``: every GPU figure in one go, on a machine with an
NVIDIA GPU, within a fixed budget (8 minutes).

Stages, each in a process of its own with its own timeout (and never past the budget's end); a failed
or timed-out stage is recorded with its reason and the rest still run:

1. ``install``: the GPU extra (``onnxruntime-gpu``, ``tensorrt``) and the project's dependencies, by pip
   (``PIP_FIND_LINKS`` / ``PIP_NO_INDEX`` point it at carried wheels on a machine without a network);
2. ``assets``: the Face Landmarker model and the sample video (``FACEMONITOR_CACHE_DIR`` /
   ``FACEMONITOR_ASSETS_DIR`` for carried copies);
3. ``clips``: the 3D-CNN (r3d18, 64×112, untrained weights: timing only) in clips/s at batch 1 and 16
   under PyTorch CUDA (fp32, fp16), ONNX Runtime CUDA and TensorRT fp16, each checked against ONNX
   Runtime on the CPU;
4. ``tensorrt-build``: the TensorRT engines of the landmark networks, built once and cached;
5. ``parity``: the ``onnx-cuda`` and ``tensorrt`` landmark backends against ONNX Runtime CPU (``onnx``)
   on the sample (``monitor.lab.parity``);
6. ``streams``: per-stream fps and latency with 1, 8, 32 and 64 streams on one engine per backend.

The figures go to ``gpu_check.json`` and ``gpu_check.md`` in the output folder. Without an NVIDIA GPU
(no ``nvidia-smi``, or it lists none) it says so and exits 0 at once. This module imports only the
standard library at its top, so that the no-GPU answer takes no time; each stage imports what it needs.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BUDGET_S = 480.0
ROOT = Path(__file__).resolve().parents[2]
# each stage's timeout, in the order they run; the budget's end stops any of them earlier
STAGE_TIMEOUTS_S = {"install": 100, "assets": 30, "tensorrt-build": 150, "clips": 90, "parity": 60, "streams": 150}


class StageStatus(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Stage:
    """One step of the check: a command whose last stdout line is a JSON object of figures."""

    name: str
    argv: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class StageResult:
    name: str
    status: StageStatus
    seconds: float
    figures: dict = field(default_factory=dict)
    error: str = ""

    def as_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d


# -- detection --------------------------------------------------------------------------------------
def detect_gpu(timeout_s: float = 15.0) -> tuple[list[str], str]:
    """(the NVIDIA GPUs ``nvidia-smi -L`` lists, a sentence saying what was found or why none)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return [], "nvidia-smi is not on the PATH"
    try:
        r = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], f"nvidia-smi did not answer ({type(e).__name__})"
    gpus = [line.strip() for line in r.stdout.splitlines() if line.startswith("GPU ")]
    if r.returncode != 0 or not gpus:
        why = (r.stderr or r.stdout).strip().splitlines()
        return [], f"nvidia-smi lists no GPU (exit {r.returncode}{': ' + why[0][:200] if why else ''})"
    return gpus, f"{len(gpus)} GPU(s): {'; '.join(gpus)}"


# -- the stage runner -------------------------------------------------------------------------------
def _tail(text: str, lines: int = 6, chars: int = 800) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


def _last_json(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        return value if isinstance(value, dict) else None
    return None


def run_stage(stage: Stage, deadline: float, env: dict | None = None, log=print) -> StageResult:
    """Run one stage within its timeout and the budget's ``deadline`` (time.monotonic); never raises."""
    left = deadline - time.monotonic()
    if left < 1.0:
        return StageResult(stage.name, StageStatus.SKIPPED, 0.0, error="no time left in the check's budget")
    timeout = min(stage.timeout_s, left)
    log(f"[{stage.name}] up to {timeout:.0f} s …")
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(list(stage.argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, start_new_session=True, cwd=ROOT)
    except OSError as e:
        return StageResult(stage.name, StageStatus.FAILED, 0.0, error=f"could not start: {e}")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the stage and anything it started (engines, pip)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        return StageResult(stage.name, StageStatus.TIMEOUT, round(time.monotonic() - t0, 1),
                           _last_json(out) or {}, f"stopped after {timeout:.0f} s; {_tail(err, 3)}".strip())
    seconds = round(time.monotonic() - t0, 1)
    figures = _last_json(out)
    if proc.returncode != 0:
        return StageResult(stage.name, StageStatus.FAILED, seconds, figures or {},
                           f"exit {proc.returncode}: {_tail(err) or _tail(out)}")
    if figures is None:
        return StageResult(stage.name, StageStatus.FAILED, seconds, {}, "the stage printed no JSON figures")
    return StageResult(stage.name, StageStatus.OK, seconds, figures)


def run_stages(stages: list[Stage], budget_s: float = BUDGET_S, env: dict | None = None, log=print) -> list[StageResult]:
    deadline = time.monotonic() + budget_s
    results = []
    for stage in stages:
        r = run_stage(stage, deadline, env, log)
        log(f"[{stage.name}] {r.status.value} in {r.seconds:.1f} s" + (f": {r.error.splitlines()[0]}" if r.error else ""))
        results.append(r)
    return results


# -- the report -------------------------------------------------------------------------------------
def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v).replace("|", "\\|").replace("\n", " ")


def rows_table(rows: list[dict]) -> list[str]:
    """A Markdown table of dicts, columns in order of first appearance."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return lines


def markdown(results: list[StageResult], meta: dict) -> str:
    lines = ["# GPU check", "", f"- GPU: {meta.get('gpu_note', '')}", f"- started: {meta.get('started', '')}",
             f"- budget: {meta.get('budget_s', '')} s, used {meta.get('seconds', '')} s", ""]
    if not results:
        lines += ["Nothing ran: " + meta.get("gpu_note", "no GPU"), ""]
        return "\n".join(lines)
    lines += rows_table([{"stage": r.name, "status": r.status.value, "seconds": r.seconds,
                          "error": r.error.splitlines()[0][:200] if r.error else ""} for r in results])
    for r in results:
        rows = r.figures.get("rows")
        rest = {k: v for k, v in r.figures.items() if k != "rows"}
        if not rows and not rest:
            continue
        lines += ["", f"## {r.name}", ""]
        if rows:
            lines += rows_table(rows)
        if rest:
            lines += [""] + [f"- {k}: {_cell(v)}" for k, v in rest.items()]
    return "\n".join(lines) + "\n"


def write_report(results: list[StageResult], meta: dict, folder: Path) -> tuple[Path, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    js, md = folder / "gpu_check.json", folder / "gpu_check.md"
    js.write_text(json.dumps({"meta": meta, "stages": [r.as_dict() for r in results]}, indent=2))
    md.write_text(markdown(results, meta))
    return js, md


# -- the stages ---------------------------------------------------------------------------------------
def default_stages(work: Path) -> list[Stage]:
    me = (sys.executable, "-m", "monitor.lab.gpu_check", "--work", str(work), "--stage")
    return [Stage(name, (*me, name), t) for name, t in STAGE_TIMEOUTS_S.items()]


def run(out: Path | None = None, budget_s: float = BUDGET_S, work: Path | None = None, log=print) -> int:
    """The whole check (exit 0 also when stages fail: the report says which and why). ``out``: the
    report's folder (default ``$OUT``, else ./gpu-check); without a GPU a report is written only where
    a folder was given or ``$OUT`` is set."""
    out = out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    gpus, note = detect_gpu()
    meta = {"started": started, "gpus": gpus, "gpu_note": note, "budget_s": budget_s, "python": sys.version.split()[0]}
    if not gpus:
        log(f"gpu check: no NVIDIA GPU here ({note}); nothing to check")
        if out is not None:
            write_report([], {**meta, "seconds": 0.0}, out)
        return 0
    out = out or Path("gpu-check")
    log(f"gpu check: {note}; budget {budget_s:.0f} s; figures go to {out}")
    work = Path(work or Path(tempfile.gettempdir()) / "facemonitor-gpu-check")  # not in out: only the report goes there
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    t0 = time.monotonic()
    results = run_stages(default_stages(work), budget_s, env, log)
    js, md = write_report(results, {**meta, "seconds": round(time.monotonic() - t0, 1)}, out)
    log(f"gpu check: {sum(r.status == StageStatus.OK for r in results)} of {len(results)} stages ok; "
        f"figures in {js} and {md}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m monitor.lab.gpu_check", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="folder for gpu_check.json and gpu_check.md (default: $OUT, else ./gpu-check)")
    ap.add_argument("--budget", type=float, default=BUDGET_S, help=f"seconds for all stages (default {BUDGET_S:.0f})")
    ap.add_argument("--work", type=Path, help="scratch folder: exported models, TensorRT engine cache (default: the temp folder's facemonitor-gpu-check)")
    ap.add_argument("--stage", choices=tuple(STAGE_TIMEOUTS_S),
                    help="run one stage in this process and print its figures (used by the runner)")
    args = ap.parse_args(argv)
    if args.stage:
        from monitor.lab import gpu_stages  # lazy: numpy, torch, onnxruntime, tensorrt load in the stage's process

        figures = gpu_stages.STAGES[args.stage](Path(args.work or "gpu-check-work"))
        print(json.dumps(figures))
        return 0
    return run(args.out, args.budget, args.work)


if __name__ == "__main__":
    sys.exit(main())
