"""``bench --whole-process``: its pure logic (spreads, busy-machine warnings, ratio tables) and one
small real run of ``analyze`` as a whole process."""

from __future__ import annotations

import pytest

from monitor.lab.bench_whole import (Spread, format_report, long_video, ratio_table, spread_warning,
                                     whole_process_runs)


@pytest.mark.fast
def test_spread_is_min_median_max_of_the_finite_repeats():
    s = Spread.of([3.0, 1.0, float("nan"), 2.0, None])
    assert (s.min, s.median, s.max, s.n) == (1.0, 2.0, 3.0, 3)
    assert s.relative == pytest.approx(1.0)
    with pytest.raises(ValueError):
        Spread.of([float("nan")])


@pytest.mark.fast
def test_spread_warning_only_when_repeats_disagree():
    assert spread_warning("fps", Spread.of([10.0, 10.5, 10.2])) is None  # 5 % apart: a quiet machine
    assert spread_warning("fps", Spread.of([10.0])) is None  # one repeat: nothing to judge
    w = spread_warning("onnx wall_s", Spread.of([10.0, 14.0, 11.0]))
    assert w.startswith("warning: onnx wall_s varied by 36%") and "busy" in w
    assert spread_warning("fps", Spread.of([10.0, 11.0]), limit=0.05) is not None


@pytest.mark.fast
def test_ratio_table_speeds_up_wall_and_divides_costs():
    runs = {"mediapipe": {"wall_s": Spread.of([20.0]), "cpu_s_per_frame": Spread.of([0.02]), "fps": Spread.of([45.0])},
            "onnx": {"wall_s": Spread.of([16.0]), "cpu_s_per_frame": Spread.of([0.03]), "fps": Spread.of([56.25]),
                     "first_result_s": Spread.of([1.0])}}
    table = ratio_table(runs, "mediapipe")
    assert list(table) == ["onnx / mediapipe"]
    row = table["onnx / mediapipe"]
    assert row["wall_s"] == 1.25  # 20 s ÷ 16 s: onnx is 1.25× as fast
    assert row["cpu_s_per_frame"] == 1.5  # and costs 1.5× the CPU per frame
    assert row["fps"] == 1.25
    assert "first_result_s" not in row  # the base has no such figure


@pytest.mark.fast
def test_format_report_prints_every_run_ratio_and_warning():
    report = {"frames": 10, "repeats": 2,
              "runs": {"mediapipe": {"fps": Spread.of([9.0, 11.0]).as_dict()}},
              "ratios": {"onnx / mediapipe": {"wall_s": 1.1}}, "warnings": ["warning: x"]}
    lines = format_report(report)
    assert lines[0].startswith("whole process, 10 frames, 2 repeats")
    assert "fps 9 / 10 / 11" in lines[1]
    assert "onnx / mediapipe" in lines[2] and "wall_s 1.100" in lines[2]
    assert lines[-1] == "warning: x"


@pytest.mark.timeout(420)
def test_whole_process_run_measures_analyze_as_users_run_it(sample_video, tmp_path):
    video = long_video(tmp_path, sample_video, 12)
    report = whole_process_runs(video, ["mediapipe"], 1, tmp_path / "store", log=lambda m: None)
    assert report["frames"] == 12 and report["repeats"] == 1
    run = report["runs"]["mediapipe"]
    assert run["wall_s"]["n"] == 1
    # the children's CPU includes the engine process (a grandchild, waited for by analyze)
    assert run["cpu_s"]["median"] > 0.5
    # analyze --json now says when its first result came, counted from its process's start
    assert 0 < run["first_result_s"]["median"] < run["wall_s"]["median"]
    assert report["ratios"]["mediapipe / mediapipe-alone"]["fps"] > 0
    # the engine started before the store was open keeps its log in the store
    logs = list((tmp_path / "store" / "mediapipe-0" / "logs").glob("engine-*.log"))
    assert len(logs) == 1 and "engine stopped: 12 frames" in logs[0].read_text()
