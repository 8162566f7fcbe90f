"""A command line without surprises (issue 21, item 3): each finding of a new user on a fresh clone,
as a test that failed before the fix."""

import argparse
import json
import os

import numpy as np
import pytest
from helpers import run_cli, write_video

from engines.base import BackendUnavailable, available_backends, create_runner
from monitor.cli.live import ended_note
from monitor.cli.main import build_parser, main
from monitor.errors import StoreError, UsageError
from monitor.lab.cohort.source import read_source
from monitor.measures.summary import summarize
from monitor.protocol import steps as S
from monitor.report.text import format_result
from monitor.store.db import Store
from monitor.store.series import SeriesWriter, build_table, merge_parts


def _error_lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


# -- options before or after the subcommand ---------------------------------------------------------

@pytest.mark.fast
@pytest.mark.parametrize("argv", [
    ["sessions", "list", "--store", "/s"], ["sessions", "--store", "/s", "list"],
    ["sessions", "show", "abc", "--store", "/s"], ["sessions", "--store", "/s", "export", "abc"],
    ["cohort", "table", "C", "--store", "/s"], ["cohort", "--store", "/s", "table", "C"],
    ["cohort", "--store", "/s", "compare", "C", "--json"],
])
def test_options_go_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert str(args.store) == "/s"


@pytest.mark.fast
@pytest.mark.parametrize("argv", [["sessions", "list"], ["cohort", "table", "C"], ["cohort", "analyze", "f"]])
def test_an_option_given_nowhere_keeps_its_default(argv):
    assert build_parser().parse_args(argv).store is None


@pytest.mark.fast
def test_sessions_list_with_the_store_after_the_subcommand_runs(tmp_path, capsys):
    assert main(["sessions", "list", "--store", str(tmp_path / "st")]) == 0
    assert f"no sessions in {tmp_path / 'st'}" in capsys.readouterr().out


# -- help for every subcommand and option --------------------------------------------------------

def _missing_help(parser: argparse.ArgumentParser, path: str) -> list[str]:
    out = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            helped = {c.dest for c in a._choices_actions}
            for name, sp in a.choices.items():
                if name not in helped:
                    out.append(f"{path} {name} (the subcommand)")
                out += _missing_help(sp, f"{path} {name}")
        elif not isinstance(a, argparse._HelpAction) and not (a.help and str(a.help).strip()):
            out.append(f"{path} {'/'.join(a.option_strings) or a.dest}")
    return out


@pytest.mark.fast
def test_every_subcommand_and_option_has_help():
    assert _missing_help(build_parser(), "facemonitor") == []


# -- the pseudonym rule on every path -----------------------------------------------------------

@pytest.mark.fast
@pytest.mark.parametrize("command", ["analyze", "live", "app"])
def test_a_name_as_person_is_refused_before_anything_is_stored(command, sample_video, store_dir, capsys):
    source = [str(sample_video)] if command == "analyze" else ["--source", str(sample_video)]
    assert main([command, *source, "--person", "John Smith", "--store", str(store_dir)]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: person id must be a pseudonym, not a name")
    assert "'John Smith'" in lines[0]
    assert not (store_dir / "facemonitor.sqlite3").exists()


@pytest.mark.fast
def test_the_store_refuses_a_name_on_every_write(tmp_path):
    with Store(tmp_path / "st") as store:
        for write in (lambda: store.create_session("a.mp4", "record", "mediapipe", person="John Smith"),
                      lambda: store.add_person("John Smith"),
                      lambda: store.save_baseline("John Smith", "s1", {"mrd1_left_mm": 3.0})):
            with pytest.raises(StoreError, match="pseudonym"):
                write()
        assert store.list_sessions() == [] and store.people() == []
        assert store.create_session("a.mp4", "record", "mediapipe", person="P-01.a")  # a pseudonym is fine


@pytest.mark.fast
def test_a_cohort_manifest_with_a_name_as_subject_is_refused(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    m = tmp_path / "m.csv"
    m.write_text("path,subject\na.mp4,John Smith\n")
    with pytest.raises(UsageError, match=r"m.csv line 2: subject: person id must be a pseudonym"):
        read_source(m)


# -- app: the source is checked before serving --------------------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize("source, message", [("/nope.mp4", "error: /nope.mp4: no such file"),
                                             ("7", "error: camera 7: not found")])
def test_app_with_a_missing_source_fails_before_serving(source, message, store_dir):
    r = run_cli("app", "--source", source, "--port", "1", store=store_dir, timeout=60)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith(message), r.stderr
    assert "facemonitor app:" not in r.stderr  # never served


# -- honest backend lists -----------------------------------------------------------------------

def _cuda_here() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


@pytest.mark.fast
@pytest.mark.skipif(_cuda_here(), reason="this machine has CUDA: onnx-cuda can run")
def test_backend_lists_name_only_what_can_run_here():
    assert "onnx-cuda" not in available_backends() and "mediapipe" in available_backends()
    with pytest.raises(BackendUnavailable) as e:
        create_runner("nope")
    available, _, unavailable = str(e.value).partition("; unavailable here: ")
    assert "onnx-cuda" not in available and "onnx-cuda (ONNX Runtime has no CUDAExecutionProvider" in unavailable
    with pytest.raises(BackendUnavailable, match="backend 'onnx-cuda' cannot run here: ONNX Runtime has no CUDA"):
        create_runner("onnx-cuda")


@pytest.mark.fast
@pytest.mark.skipif(_cuda_here(), reason="this machine has CUDA: onnx-cuda can run")
def test_analyze_refuses_a_backend_that_cannot_run_here_before_starting_an_engine(sample_video, store_dir, capsys):
    assert main(["analyze", str(sample_video), "--backend", "onnx-cuda", "--store", str(store_dir)]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: backend 'onnx-cuda' cannot run here")
    assert not (store_dir / "facemonitor.sqlite3").exists()


# -- whole engine-start errors ------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_an_engine_start_error_is_reported_whole(tmp_path):
    from monitor.engine.local import LocalEngine
    from monitor.errors import EngineError
    from monitor.transport.client import EngineClient

    engine = LocalEngine("tensorrt", log_dir=tmp_path)
    client = EngineClient(engine.endpoint)
    try:
        with pytest.raises(EngineError) as e:
            engine.wait_ready(client, 90)
    finally:
        client.close()
        engine.stop()
    logged = [ln for ln in engine.log_path.read_text().splitlines() if ln.startswith("error: ")][-1]
    assert len(logged) > 200  # long enough that the old 200-character tail cut its head off
    assert str(e.value).endswith(": " + logged.removeprefix("error: "))
    assert "backend 'tensorrt' cannot run here" in str(e.value)


# -- fatigue: signs, percent of a near-zero baseline, stretches too short ------------------------

def _store_with_lid(root, mrd1_left, mrd1_right, seconds: float) -> str:
    """A stored session whose MRD1 goes linearly between the given (start, end) values in mm."""
    n = int(seconds * 30)
    with Store(root) as store:
        sid = store.create_session("synthetic.mp4", "record", "mediapipe")
        writer = SeriesWriter(store.session_dir(sid))
        for i, (lft, rgt) in enumerate(zip(np.linspace(*mrd1_left, n), np.linspace(*mrd1_right, n))):
            writer.append({"frame": i, "t_s": i / 30, "face": True, "faces": 1, "mrd1_left_mm": float(lft),
                           "mrd1_right_mm": float(rgt), "eye_aperture_left_mm": 9.0, "eye_aperture_right_mm": 9.0,
                           "eye_closed_left": False, "eye_closed_right": False})
        writer.flush()
        merge_parts(store.session_dir(sid))
    return sid


@pytest.mark.fast
def test_fatigue_drop_and_drop_rate_agree_in_sign_and_skip_percent_of_a_near_zero_baseline(tmp_path, capsys):
    # the left lid lowers 4 → 2 mm; the right rises from a near-zero 0.3 mm to 1 mm
    sid = _store_with_lid(tmp_path / "st", (4.0, 2.0), (0.3, 1.0), 12.0)
    assert main(["sessions", "fatigue", sid, "--json", "--store", str(tmp_path / "st")]) == 0
    curves = json.loads(capsys.readouterr().out)["fatigue"]
    left, right = curves["left"]["mrd1"], curves["right"]["mrd1"]
    assert left["drop_mm"] > 1.0 and left["drop_rate_mm_per_min"] > 5.0 and 30 < left["drop_pct"] < 60
    assert right["drop_mm"] < 0 and right["drop_rate_mm_per_min"] < 0
    assert right["drop_pct"] is None  # not a percentage of 0.3 mm
    assert left["slope_mm_per_min"] == -left["drop_rate_mm_per_min"]
    assert main(["sessions", "fatigue", sid, "--store", str(tmp_path / "st")]) == 0
    text = capsys.readouterr().out
    assert "drop rate" in text and "positive when the lid lowers" in text and "under 1 mm" in text
    row = next(ln for ln in text.splitlines() if "left mrd1" in ln)
    assert "+" not in row and row.count("-") == 0  # the lowering lid: every figure positive
    row = next(ln for ln in text.splitlines() if "right mrd1" in ln)
    assert row.count("-") == 2 and "%" not in row  # drop and drop rate both negative; no percent


@pytest.mark.fast
def test_fatigue_on_a_short_stretch_is_refused_with_its_length_and_the_minimum(tmp_path, capsys):
    sid = _store_with_lid(tmp_path / "st", (4.0, 4.0), (4.0, 4.0), 2.4)
    assert main(["sessions", "fatigue", sid, "--store", str(tmp_path / "st")]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and "has 2.4 s with a face" in lines[0] and "needs at least 6 s" in lines[0]
    assert "less than 6 s" in lines[0]


# -- the step table in text output --------------------------------------------------------------

def _result_with_steps() -> dict:
    rows = []
    for i in range(60):
        step = S.NEUTRAL if i < 30 else S.SHOWING_TEETH
        rows.append({"frame": i, "t_s": i / 30, "face": True, "faces": 1, "step": step,
                     "eye_aperture_left_mm": 9.0 if step == S.NEUTRAL else 7.0, "eye_aperture_right_mm": 9.5,
                     "mrd1_left_mm": 3.0, "mrd1_right_mm": 3.5, "eye_closed_left": False, "eye_closed_right": False})
    summary = summarize(build_table(rows, [None] * len(rows)))
    return {"session_id": "s1", "status": "complete", "frames": 60, "frames_with_face": 60, "processing_fps": 30.0,
            "dropped_frames": 0, "series_path": "x.parquet", "summary": summary.as_dict()}


@pytest.mark.fast
def test_text_output_has_the_step_table():
    spans = [{"step": S.NEUTRAL, "start_s": 0.0, "end_s": 1.0}, {"step": S.SHOWING_TEETH, "start_s": 1.0, "end_s": 2.0},
             {"step": "happiness", "start_s": 2.0, "end_s": 3.0}]
    lines = format_result(_result_with_steps(), spans).splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["step", "status"])
    rows = [ln.split() for ln in lines[header + 1:header + 4]]
    assert rows[0][:9] == ["neutral", "measured", "0.0", "s", "1.0", "s", "30", "9.0", "9.5"]
    assert rows[1][:9] == ["showing_teeth", "measured", "1.0", "s", "2.0", "s", "30", "7.0", "9.5"]
    assert rows[2][:3] == ["happiness", "no", "frames"]  # planned, never reached
    # without a steps file, the measured steps still get their table
    assert any(ln.split()[:2] == ["showing_teeth", "measured"] for ln in format_result(_result_with_steps()).splitlines())


# -- live says when the video ended ------------------------------------------------------------

@pytest.mark.fast
def test_live_notes_a_video_that_ends_before_the_seconds_asked(tmp_path, sample_frames):
    video = write_video(tmp_path / "short.mp4", sample_frames[:12])  # 0.4 s at 30 fps
    assert ended_note(str(video), 10.0) == "the video ended after 0.4 s, before --seconds 10"
    assert ended_note(str(video), None) == "the video ended after 0.4 s"
    assert ended_note(str(video), 0.3) is None and ended_note("0", 10.0) is None


# -- bench leaves no temporary folders ---------------------------------------------------------

@pytest.mark.timeout(120)
def test_bench_removes_its_scratch_store_even_when_it_fails(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = run_cli("bench", "--repeat", "1", timeout=100,
                env={"TMPDIR": str(tmp), "FACEMONITOR_MODEL": str(tmp_path / "missing.task")})
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: "), r.stderr
    assert "sample: single_face.mp4; store:" in r.stdout  # it got as far as making its scratch store
    assert [p.name for p in tmp.iterdir() if p.name.startswith("facemonitor-")] == []


# -- real runs on the sample (the model) -------------------------------------------------------

@pytest.mark.timeout(300)
def test_live_says_the_video_ended_and_analyze_prints_the_step_table(sample_video, store_dir, tmp_path):
    r = run_cli("live", "--seconds", "10", "--no-preview", store=store_dir)
    assert r.returncode == 0, r.stderr
    assert "the video ended after 2.4 s, before --seconds 10" in r.stderr
    steps = tmp_path / "steps.csv"
    steps.write_text("start_s,end_s,step\n0,1.0,neutral\n1.0,2.0,happiness\n5,6,surprise\n")
    r = run_cli("analyze", sample_video, "--steps", steps, store=store_dir)
    assert r.returncode == 0, r.stderr
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines() if ln.startswith("  ") and ln.split()}
    assert rows["neutral"][1] == "measured" and int(rows["neutral"][6]) > 20
    assert rows["happiness"][1] == "measured" and rows["surprise"][1:3] == ["no", "frames"]
    assert os.path.exists(r.stdout.split("series: ")[1].splitlines()[0])
