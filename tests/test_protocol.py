"""Protocols as data, their files, and the pure state machine that drives them."""

import json

import pytest

from monitor.errors import UsageError
from monitor.protocol import steps as S
from monitor.protocol.definitions import BUILTIN, MG24, SHORT, protocol_from_dict, read_protocol, resolve_protocol
from monitor.protocol.run import ABORTED, COUNTDOWN, DONE, PAUSED, READY, STEP, ProtocolRun

pytestmark = pytest.mark.fast


def test_mg24_is_the_published_protocol():
    assert [s.step for s in MG24.steps] == list(S.ALL_STEPS)
    durations = {s.step: s.duration_s for s in MG24.steps}
    assert all(durations[s] == 8 for s in S.EXPRESSION_STEPS)
    assert durations["gaze_left"] == durations["gaze_right"] == 30
    assert all(durations[g] == 4 for g in S.GAZE_DIRECTIONS if g not in S.SUSTAINED_GAZE)
    assert {s.step for s in MG24.steps if s.continuous} == set(S.SUSTAINED_GAZE)
    # 3–4 minutes of steps, plus the countdowns
    assert 180 <= sum(durations.values()) <= 240 and MG24.total_s == sum(durations.values()) + 24 * MG24.countdown_s


def test_short_protocol_keeps_a_fatigue_step_long_enough_for_a_curve():
    from monitor.measures.summary import MIN_FATIGUE_S

    gaze = [s for s in SHORT.steps if s.step in S.SUSTAINED_GAZE]
    assert gaze and gaze[0].duration_s >= MIN_FATIGUE_S and SHORT.total_s < 30


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_custom_toml_protocol_inherits_and_overrides(tmp_path):
    p = _write(tmp_path, "morning.toml", """
name = "morning"
title = "Morning check"
countdown_s = 2
[[steps]]
step = "neutral"
[[steps]]
step = "gaze_left"
duration_s = 45
instruction = "Look at the left edge of the screen."
""")
    proto = read_protocol(p)
    assert proto.name == "morning" and proto.countdown_s == 2
    assert proto.steps[0].duration_s == 8 and proto.steps[0].instruction == MG24.steps[0].instruction
    assert proto.steps[1].duration_s == 45 and proto.steps[1].continuous
    assert proto.steps[1].instruction == "Look at the left edge of the screen."
    assert resolve_protocol(str(p)) == proto


def test_custom_json_protocol(tmp_path):
    p = _write(tmp_path, "c.json", json.dumps({"name": "c", "steps": [{"step": "happiness", "duration_s": 3}]}))
    assert read_protocol(p).steps[0].duration_s == 3


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "steps": []}, "steps must be a non-empty list"),
    ({"name": "x"}, "steps must be a non-empty list"),
    ({"name": "bad name!", "steps": [{"step": "neutral"}]}, "name must be"),
    ({"name": "short", "steps": [{"step": "neutral"}]}, "built-in protocol"),
    ({"name": "x", "colour": 1, "steps": [{"step": "neutral"}]}, "unknown field(s) colour"),
    ({"name": "x", "steps": [{"step": "smile"}]}, "step 1: unknown step 'smile'"),
    ({"name": "x", "steps": [{"step": "neutral"}, {"step": "neutral"}]}, "step 2: 'neutral' appears twice"),
    ({"name": "x", "steps": [{"step": "neutral", "duration_s": 0}]}, "between 1 and 600"),
    ({"name": "x", "steps": [{"step": "neutral", "duration_s": "8"}]}, "must be a number"),
    ({"name": "x", "steps": [{"step": "neutral", "duration_s": True}]}, "must be a number"),
    ({"name": "x", "steps": [{"step": "neutral", "continuous": "yes"}]}, "true or false"),
    ({"name": "x", "steps": [{"step": "neutral", "instruction": "  "}]}, "non-empty text"),
    ({"name": "x", "steps": [{"step": "neutral", "wait": 1}]}, "step 1: unknown field(s) wait"),
    ({"name": "x", "countdown_s": -1, "steps": [{"step": "neutral"}]}, "countdown_s must be between"),
    ([1, 2], "expected a table"),
])
def test_bad_protocols_are_refused_with_where_and_why(data, message):
    with pytest.raises(UsageError) as e:
        protocol_from_dict(data, "p.json")
    assert message in str(e.value) and str(e.value).startswith("p.json")


def test_bad_protocol_files(tmp_path):
    with pytest.raises(UsageError, match="not valid TOML"):
        read_protocol(_write(tmp_path, "a.toml", "name = [unclosed"))
    with pytest.raises(UsageError, match="not valid JSON"):
        read_protocol(_write(tmp_path, "a.json", "{"))
    with pytest.raises(UsageError, match="must end in .toml or .json"):
        read_protocol(_write(tmp_path, "a.yaml", "name: x"))
    with pytest.raises(UsageError, match="cannot read protocol file"):
        read_protocol(tmp_path / "missing.toml")
    with pytest.raises(UsageError, match="unknown protocol 'long'"):
        resolve_protocol("long")
    assert set(BUILTIN) == {"mg24", "short", "mg24+ptosis", "ptosis"}


# -- the state machine ----------------------------------------------------------------------------

def _proto(*specs, countdown=1.0):
    return protocol_from_dict({"name": "t", "countdown_s": countdown,
                               "steps": [dict(step=s, duration_s=d) for s, d in specs]})


def _run_for(run, t0, seconds, ok=True, dt=0.1):
    t = t0
    while t < t0 + seconds - 1e-9:
        t = round(t + dt, 6)
        run.tick(t, ok)
    return t


def test_countdown_then_steps_then_done():
    run = ProtocolRun(_proto(("neutral", 2), ("happiness", 1)))
    assert run.phase == READY and run.label() == ""
    run.start(0.0)
    assert run.phase == COUNTDOWN and run.view().message == "Get ready: Neutral face"
    t = _run_for(run, 0.0, 1.0)
    assert run.phase == STEP and run.index == 0
    t = _run_for(run, t, 1.0)
    assert run.label() == "neutral" and run.view().remaining_s == pytest.approx(1.0, abs=0.11)
    t = _run_for(run, t, 1.05)
    assert run.phase == COUNTDOWN and run.index == 1 and run.records[0].status == "done"
    t = _run_for(run, t, 2.1)
    assert run.phase == DONE and run.view().progress == 1.0
    assert [r.status for r in run.records] == ["done", "done"]
    kinds = [k for _, k, _ in run.events]
    assert kinds[0] == "protocol_started" and kinds[-1] == "protocol_done" and kinds.count("step_done") == 2


def test_countdown_waits_for_quality():
    run = ProtocolRun(_proto(("neutral", 1)))
    run.start(0.0)
    t = _run_for(run, 0.0, 5.0, ok=False)
    assert run.phase == COUNTDOWN and run.view().remaining_s == 1.0
    _run_for(run, t, 1.0)
    assert run.phase == STEP


def test_bad_frames_extend_an_ordinary_step_and_are_not_labelled():
    run = ProtocolRun(_proto(("neutral", 2)), grace_s=0.5)
    run.start(0.0)
    t = _run_for(run, 0.0, 1.0)
    t = _run_for(run, t, 1.0)  # 1 s counted
    t = _run_for(run, t, 3.0, ok=False)  # a long break: extended, not restarted
    assert run.phase == STEP and run.label() == "" and not run.counting
    assert run.records[0].counted_s == pytest.approx(1.0, abs=0.11)
    assert run.records[0].quality_lost_s == pytest.approx(3.0, abs=0.11)
    _run_for(run, t, 1.05)
    assert run.phase == "done" and run.records[0].attempts == 1


def test_a_break_restarts_a_continuous_step_but_a_short_one_does_not():
    run = ProtocolRun(_proto(("gaze_left", 10)), grace_s=0.5)
    assert run.protocol.steps[0].continuous
    run.start(0.0)
    t = _run_for(run, 0.0, 1.0)
    t = _run_for(run, t, 4.0)
    t = _run_for(run, t, 0.3, ok=False)  # within the grace: still the same attempt
    assert run.phase == STEP and run.records[0].attempts == 1
    t = _run_for(run, t, 0.5, ok=False)
    assert run.phase == COUNTDOWN and run.records[0].counted_s == 0
    assert any(k == "step_restarted" for _, k, _ in run.events)
    t = _run_for(run, t, 1.0)
    assert run.phase == STEP and run.records[0].attempts == 2


def test_a_stall_between_ticks_counts_at_most_half_a_second():
    run = ProtocolRun(_proto(("neutral", 5), countdown=0))
    run.start(0.0)
    run.tick(0.1, True)
    run.tick(10.0, True)  # nothing arrived for 9.9 s
    assert run.records[0].counted_s == pytest.approx(0.1 + 0.5)


def test_pause_resume_repeat_skip_abort():
    run = ProtocolRun(_proto(("neutral", 2), ("gaze_left", 10), ("happiness", 2)))
    run.start(0.0)
    t = _run_for(run, 0.0, 2.0)
    run.pause(t)
    assert run.phase == PAUSED and run.label() == ""
    t = _run_for(run, t, 5.0)  # time passes while paused: nothing counts
    assert run.records[0].counted_s == pytest.approx(1.0, abs=0.11)
    run.resume(t)
    assert run.phase == COUNTDOWN and run.records[0].counted_s > 0  # an ordinary step keeps its time
    t = _run_for(run, t, 2.1)
    assert run.phase == COUNTDOWN and run.index == 1
    run.repeat(t)  # during the next countdown: the step just finished, again
    assert run.index == 0 and run.records[0].counted_s == 0 and run.records[0].status == "pending"
    t = _run_for(run, t, 3.1)
    assert run.index == 1
    t = _run_for(run, t, 1.0 + 3.0)
    run.pause(t)
    run.resume(t)  # a continuous step starts over after a pause
    assert run.records[1].counted_s == 0
    run.skip(t)
    assert run.records[1].status == "skipped" and run.index == 2
    run.abort(t + 0.1)
    assert run.phase == ABORTED and run.finished
    run.tick(t + 1, True)
    run.skip(t + 1)
    assert run.phase == ABORTED


def test_skip_to_the_end_finishes_and_start_is_once_only():
    run = ProtocolRun(_proto(("neutral", 2), ("happiness", 2)))
    run.start(0.0)
    run.skip(0.1)
    run.skip(0.2)
    assert run.phase == DONE and [r.status for r in run.records] == ["skipped", "skipped"]
    with pytest.raises(RuntimeError):
        run.start(1.0)


# -- steps files (analyze --steps) ---------------------------------------------------------------------

def test_steps_file_labels_media_time():
    tl = S.parse_steps("start_s,end_s,step\n0,1.0,neutral  # the first second\n\n2.5,4,gaze_left\n1.0,2.0,happiness\n")
    assert [tl(t) for t in (0.0, 0.999, 1.0, 1.5, 2.0, 2.4, 2.5, 3.99, 4.0, -1.0)] == [
        "neutral", "neutral", "happiness", "happiness", "", "", "gaze_left", "gaze_left", "", ""]
    assert [sp.step for sp in tl.spans] == ["neutral", "happiness", "gaze_left"]  # sorted by start


@pytest.mark.parametrize("text, message", [
    ("0,1,neutral\n1,2,blinking\n", "line 2: unknown step 'blinking'"),
    ("0,2,neutral\n1,3,happiness\n", "steps overlap: neutral (0–2 s) and happiness (1–3 s)"),
    ("0;1;neutral\n", "line 1: expected start_s,end_s,step"),
    ("a,1,neutral\n", "line 1: start and end must be seconds"),
    ("2,1,neutral\n", "line 1: need 0 ≤ start < end, got 2, 1"),
    ("0,inf,neutral\n", "line 1: need 0 ≤ start < end"),
    ("# nothing\n", "names no steps"),
])
def test_bad_steps_files_say_where_and_why(text, message, tmp_path):
    with pytest.raises(UsageError) as e:
        S.parse_steps(text)
    assert message in str(e.value)
    p = _write(tmp_path, "steps.csv", text)
    with pytest.raises(UsageError) as e:
        S.read_steps(p)
    assert message in str(e.value)
    if "overlap" not in message:  # (the overlap check, in StepTimeline, does not know the file's name)
        assert str(e.value).startswith(str(p))
    with pytest.raises(UsageError, match="cannot read steps file"):
        S.read_steps(tmp_path / "missing.csv")
