"""The one-command GPU check's CPU-only parts: the answer on a machine without a GPU, the stage runner
(timeouts, failures recorded, the rest still run, the budget) and the JSON/Markdown report. The GPU
stages themselves need an NVIDIA GPU (docs/performance.md)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.lab import gpu_check
from monitor.lab.gpu_check import Stage, StageResult, StageStatus, detect_gpu, run_stage, run_stages, write_report

ROOT = Path(__file__).resolve().parents[1]


def _fake_smi(folder: Path, script: str) -> str:
    """A PATH whose nvidia-smi is ``script`` (a shell body), with the system's tools behind it."""
    folder.mkdir(exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + script + "\n")
    smi.chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


@pytest.mark.fast
@pytest.mark.timeout(60)
def test_without_a_gpu_the_script_says_so_and_exits_0(tmp_path):
    env = dict(os.environ, PATH="/usr/bin:/bin")  # no nvidia-smi
    env.pop("OUT", None)
    r = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path / "out")], env=env,
                       capture_output=True, text=True, timeout=50)
    assert r.returncode == 0, r.stderr
    assert "no NVIDIA GPU here (nvidia-smi is not on the PATH)" in r.stdout
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["stages"] == [] and report["meta"]["gpus"] == []
    assert "Nothing ran" in (tmp_path / "out" / "gpu_check.md").read_text()


@pytest.mark.fast
@pytest.mark.timeout(60)
def test_a_driver_that_answers_with_no_gpu_is_no_gpu(tmp_path):
    path = _fake_smi(tmp_path / "bin", "echo \"NVIDIA-SMI has failed because it couldn't communicate with the "
                                       "NVIDIA driver.\"; exit 9")
    env = dict(os.environ, PATH=path, PYTHONPATH=str(ROOT))
    env.pop("OUT", None)
    r = subprocess.run([sys.executable, "-m", "monitor", "bench", "--gpu"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=50)
    assert r.returncode == 0, r.stderr
    assert "no NVIDIA GPU here (nvidia-smi lists no GPU (exit 9: NVIDIA-SMI has failed" in r.stdout
    assert not (tmp_path / "gpu-check").exists()  # no folder given, no $OUT: nothing written


@pytest.mark.fast
def test_detect_gpu_reads_nvidia_smi_list(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_smi(tmp_path / "bin", "echo 'GPU 0: NVIDIA H200 (UUID: GPU-1234)'"))
    gpus, note = detect_gpu()
    assert gpus == ["GPU 0: NVIDIA H200 (UUID: GPU-1234)"] and note.startswith("1 GPU(s)")


def _py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


@pytest.mark.fast
@pytest.mark.timeout(60)
def test_stage_runner_records_failures_and_timeouts_and_runs_the_rest(tmp_path):
    pid_file = tmp_path / "child.pid"
    hang = (f"import subprocess, time, pathlib; p = subprocess.Popen(['sleep', '60']); "
            f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid)); print('{{\"partial\": 1}}', flush=True); "
            "time.sleep(60)")
    stages = [Stage("good", _py("print('progress'); print('{\"fps\": 12.5}')"), 20),
              Stage("broken", _py("import sys; print('boom: no CUDA provider', file=sys.stderr); sys.exit(3)"), 20),
              Stage("hangs", _py(hang), 1.5),
              Stage("silent", _py("print('no figures')"), 20),
              Stage("after", _py("print('{\"rows\": [{\"streams\": 1}]}')"), 20)]
    results = {r.name: r for r in run_stages(stages, budget_s=60, log=lambda m: None)}
    assert results["good"].status == StageStatus.OK and results["good"].figures == {"fps": 12.5}
    assert results["broken"].status == StageStatus.FAILED
    assert "exit 3" in results["broken"].error and "no CUDA provider" in results["broken"].error
    hung = results["hangs"]
    assert hung.status == StageStatus.TIMEOUT and hung.figures == {"partial": 1}  # what it printed is kept
    child = int(pid_file.read_text())
    for _ in range(50):  # the stage's own children were stopped with it
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the timed-out stage's child process is still running")
    assert results["silent"].status == StageStatus.FAILED and "no JSON" in results["silent"].error
    assert results["after"].status == StageStatus.OK  # a failed stage does not stop the rest


@pytest.mark.fast
@pytest.mark.timeout(30)
def test_stages_past_the_budget_are_skipped():
    deadline = time.monotonic() + 0.5
    r = run_stage(Stage("late", _py("print('{}')"), 20), deadline - 1.0)
    assert r.status == StageStatus.SKIPPED and "budget" in r.error
    results = run_stages([Stage("slow", _py("import time; time.sleep(30)"), 20),
                          Stage("next", _py("print('{}')"), 20)], budget_s=1.5, log=lambda m: None)
    assert [r.status for r in results] == [StageStatus.TIMEOUT, StageStatus.SKIPPED]


@pytest.mark.fast
def test_report_writes_json_and_markdown_tables(tmp_path):
    results = [StageResult("streams", StageStatus.OK, 42.0,
                           {"rows": [{"backend": "tensorrt", "streams": 8, "per_stream_fps_mean": 61.25},
                                     {"backend": "onnx-cuda", "streams": 8, "error": "a|b"}],
                            "seconds_per_run": 3.0}),
               StageResult("install", StageStatus.FAILED, 3.5, {"pip_exit": 1}, "exit 1: no network\nmore")]
    meta = {"gpu_note": "1 GPU(s): GPU 0: NVIDIA H200", "started": "now", "budget_s": 480, "seconds": 45.5}
    js, md = write_report(results, meta, tmp_path / "report")
    data = json.loads(js.read_text())
    assert data["meta"] == meta
    assert data["stages"][0]["status"] == "ok" and data["stages"][0]["figures"]["rows"][0]["streams"] == 8
    assert data["stages"][1] == {"name": "install", "status": "failed", "seconds": 3.5, "figures": {"pip_exit": 1},
                                 "error": "exit 1: no network\nmore"}
    text = md.read_text()
    assert "| stage | status | seconds | error |" in text
    assert "| install | failed | 3.5 | exit 1: no network |" in text
    assert "| backend | streams | per_stream_fps_mean | error |" in text
    assert "| tensorrt | 8 | 61.25 |  |" in text and "| onnx-cuda | 8 |  | a\\|b |" in text
    assert "- seconds_per_run: 3" in text and "- pip_exit: 1" in text


@pytest.mark.fast
@pytest.mark.timeout(60)
def test_run_on_a_gpu_machine_writes_every_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_smi(tmp_path / "bin", "echo 'GPU 0: NVIDIA H200 (UUID: GPU-1)'"))
    monkeypatch.setattr(gpu_check, "default_stages", lambda work: [
        Stage("install", _py("import sys; sys.exit(1)"), 10), Stage("clips", _py("print('{\"rows\": []}')"), 10)])
    assert gpu_check.run(tmp_path / "out", budget_s=30, log=lambda m: None) == 0
    data = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert data["meta"]["gpus"] == ["GPU 0: NVIDIA H200 (UUID: GPU-1)"]
    assert [(s["name"], s["status"]) for s in data["stages"]] == [("install", "failed"), ("clips", "ok")]


@pytest.mark.fast
def test_default_stages_cover_the_check_in_order_within_the_budget(tmp_path):
    from monitor.lab import gpu_stages

    stages = gpu_check.default_stages(tmp_path)
    assert [s.name for s in stages] == ["install", "assets", "tensorrt-build", "clips", "parity", "streams"]
    assert set(gpu_stages.STAGES) == {s.name for s in stages}
    assert all(s.timeout_s < gpu_check.BUDGET_S for s in stages) and gpu_check.BUDGET_S <= 8 * 60
    assert gpu_stages.STREAM_COUNTS == (1, 8, 32, 64) and gpu_stages.CLIP_BATCHES == (1, 16)


@pytest.mark.fast
def test_cnn_starvation_figure_checks_fps_ratio_and_drops():
    from monitor.lab.bench import cnn_starvation

    ok = cnn_starvation({"fps": 30.0, "dropped": 2}, {"fps": 29.1, "dropped": 0})
    assert ok["landmark_fps_ratio"] == 0.97 and ok["targets_met"] == {"landmark_fps_ratio": True,
                                                                      "landmark_dropped_with_cnn": True}
    starved = cnn_starvation({"fps": 28.0, "dropped": 0}, {"fps": 18.0, "dropped": 132})  # issue 20's run
    assert starved["landmark_fps_ratio"] == 0.643
    assert starved["targets_met"] == {"landmark_fps_ratio": False, "landmark_dropped_with_cnn": False}
    assert cnn_starvation({"fps": 0.0, "dropped": 0}, {"fps": 0.0, "dropped": 0})["targets_met"]["landmark_fps_ratio"] is False
