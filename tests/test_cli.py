import json

from helpers import run_cli


def test_live_without_a_webcam_plays_the_sample_video(store_dir):
    r = run_cli("live", "--seconds", "1.5", "--no-preview", store=store_dir)
    assert r.returncode == 0, r.stderr
    assert "no webcam at index 0; playing the sample video single_face.mp4 instead" in r.stderr
    assert "not a diagnostic device" in r.stdout
    assert "eye aperture" in r.stderr and "latency p95" in r.stderr  # the progress line
    listed = json.loads(run_cli("sessions", "list", "--json", store=store_dir).stdout)
    row = listed[0]
    assert row["mode"] == "live" and row["status"] == "complete" and row["frames"] >= 1
    # 1.5 s of the 30 fps sample is 45 frames: each analysed or, when the machine is busy, dropped and counted
    assert row["frames"] + row["dropped_frames"] == 45


def test_live_with_an_explicit_missing_camera_is_an_error(store_dir):
    r = run_cli("live", "--source", "5", store=store_dir)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: camera 5: not found")


def test_bench_prints_ratios_and_writes_figures(tmp_path):
    out = tmp_path / "bench.json"
    r = run_cli("bench", "--live-seconds", "3", "--repeat", "1", "--json", out, "--store", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert "ratio" in r.stdout and "live capture→result" in r.stdout
    figures = json.loads(out.read_text())
    assert figures["pipeline_frames"] == 72 and figures["live_frames"] > 0  # live's rate is a figure, not a test
    assert 0 < figures["pipeline_over_mediapipe"] < 5
    assert figures["kernels"]["numba_ms"] > 0 and set(figures["stages_ms"]) == {"decode", "transport", "landmarks",
                                                                                "kernels", "store"}


def test_engine_command_bad_endpoint_is_one_error_line():
    r = run_cli("engine", "--bind", "nonsense://x", timeout=60)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: ")
