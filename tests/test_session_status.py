"""Honest status: a session is `complete` only when every frame sent to the engine has a result."""

import threading
import uuid

import pytest
import zmq
from helpers import free_port, run_cli

from monitor.cli.main import main
from monitor.engine.service import EngineService
from monitor.session.result import FrameLedger, frame_ranges
from monitor.store.db import Store


@pytest.mark.fast
def test_frame_ranges_are_compact():
    assert frame_ranges([9, 0, 1, 2, 3, 7, 10, 11, 12, 12]) == "0-3, 7, 9-12"
    assert frame_ranges([]) == "" and frame_ranges([5]) == "5"


@pytest.mark.fast
def test_ledger_counts_lost_rejected_and_unanswered_frames():
    assert FrameLedger(sent=3, answered=3).shortfall([]) is None
    assert FrameLedger().shortfall([]) == "no frame reached the engine"  # 0 frames is never complete
    ledger = FrameLedger(sent=10, answered=6)
    ledger.lost[3] = "lost: engine gone"
    ledger.rejects["rejected by the engine: bad header"] += 2
    why = ledger.shortfall([7, 8, 9])
    assert why.startswith("4 of 10 frames have no result (frames 3, 7-9)")
    assert "2 × rejected by the engine: bad header" in why and "1 × lost: engine gone" in why


@pytest.fixture
def refusing_engine():
    """A real engine whose iris size is implausible, so it rejects every frame (the engine log of
    `--iris-mm 50` before the options were checked)."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    control = f"inproc://control-{uuid.uuid4()}"
    ctx = zmq.Context.instance()
    service = EngineService(endpoint, control, ctx=ctx, iris_mm=50.0)
    ready = threading.Event()
    t = threading.Thread(target=service.serve, kwargs={"ready": ready.set}, daemon=True)
    t.start()
    assert ready.wait(10)
    yield endpoint, service
    s = ctx.socket(zmq.PUSH)
    s.connect(control)
    s.send(b"STOP")
    s.close(linger=1000)
    t.join(20)


@pytest.mark.timeout(180)
def test_a_stream_the_engine_refuses_makes_the_session_incomplete(refusing_engine, sample_video, store_dir):
    endpoint, service = refusing_engine
    r = run_cli("analyze", sample_video, "--engine", endpoint, "--max-seconds", "0.2", store=store_dir, timeout=150)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    # the engine refuses the stream (or, frame by frame, each frame): either way no frame has a result
    assert len(lines) == 1 and lines[0].startswith("error: ") and "iris diameter 50.0 mm" in lines[0], r.stderr
    with Store(store_dir) as store:
        (row,) = store.list_sessions()
        assert row.status == "incomplete" and row.frames == 0
        assert "iris diameter 50.0 mm is not plausible" in row.error


@pytest.mark.fast
@pytest.mark.parametrize("args, says", [
    (("analyze", "x.mp4", "--iris-mm", "50"), "--iris-mm must be 9–14 mm (got"),
    (("analyze", "x.mp4", "--iris-mm", "-3"), "--iris-mm must be 9–14 mm (got"),
    (("analyze", "x.mp4", "--iris-mm", "nan"), "must be a finite number"),
    (("analyze", "x.mp4", "--max-seconds", "-1"), "above 0"),
    (("analyze", "x.mp4", "--max-seconds", "0"), "above 0"),
    (("analyze", "x.mp4", "--cnn-stride", "0"), "at least 1"),
    (("live", "--seconds", "-5"), "above 0"),
    (("live", "--seconds", "inf"), "must be a finite number"),
    (("app", "--port", "0"), "--port must be 1–65535"),
    (("app", "--port", "70000"), "--port must be 1–65535"),
    (("engine", "--iris-mm", "50"), "--iris-mm must be 9–14 mm (got"),
    (("cohort", "analyze", "d", "--workers", "0"), "at least 1"),
    (("sessions", "fatigue", "x", "--from", "-2"), "at least 0"),
    (("bench", "--repeat", "0"), "at least 1"),
    (("cnn", "train", "--dataset", "d", "--out", "o", "--lr", "0"), "above 0"),
    (("cnn", "train", "--dataset", "d", "--out", "o", "--folds", "1"), "at least 2"),
    (("models", "export-onnx", "--frames", "x"), "--frames must be an integer"),
])
def test_numeric_options_out_of_range_are_refused_at_parse_time(args, says, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACEMONITOR_STORE", str(tmp_path / "store"))
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    lines = capsys.readouterr().err.splitlines()  # one line, no usage block
    assert exit_.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
    assert not (tmp_path / "store").exists()  # refused before anything was written
