"""The live 3D-CNN's own process (monitor/cnn/worker.py): its message framing, and that the live
ClipEngine runs clips there, at the lowest CPU priority, with the same answers as in the engine
process, and loses only clips (counted), never frames, when that process dies."""

import importlib.util
import io
import os
import signal

import numpy as np
import pytest

from monitor.cnn.crops import LEFT_EYE_INNER, LEFT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_OUTER, align_crop
from monitor.cnn.worker import PREFIX, WorkerError, read_message, write_message

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="PyTorch is not installed (pip install 'facemonitor[train]')")


@pytest.mark.fast
def test_messages_round_trip_and_refuse_damage():
    buf = io.BytesIO()
    clip = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    write_message(buf, {"shape": [2, 4, 4, 3]}, memoryview(clip).cast("B"))
    write_message(buf, {"stop": True})
    data = buf.getvalue()
    inp = io.BytesIO(data)
    meta, payload = read_message(inp)
    assert meta == {"shape": [2, 4, 4, 3]}
    np.testing.assert_array_equal(np.frombuffer(payload, np.uint8).reshape(meta["shape"]), clip)
    assert read_message(inp) == ({"stop": True}, b"")
    with pytest.raises(EOFError):
        read_message(inp)  # the other side closed
    with pytest.raises(EOFError):
        read_message(io.BytesIO(data[:40]))  # cut off inside the pixels
    with pytest.raises(ValueError, match="header"):
        read_message(io.BytesIO(PREFIX.pack(1 << 20, 0)))
    with pytest.raises(ValueError, match="JSON object"):
        read_message(io.BytesIO(PREFIX.pack(2, 0) + b"[]"))


def _landmarks() -> np.ndarray:
    lms = np.zeros((478, 3), np.float32)
    lms[:, :2] = (320, 200)
    lms[[RIGHT_EYE_OUTER, RIGHT_EYE_INNER], :2] = [(250, 150), (290, 150)]
    lms[[LEFT_EYE_INNER, LEFT_EYE_OUTER], :2] = [(350, 150), (390, 150)]
    return lms


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    from monitor.lab.cnn.checkpoint import export_onnx

    out = tmp_path_factory.mktemp("worker") / "r3d18-8x32.onnx"
    export_onnx(out, "r3d18", 8, 32)
    return out


@needs_torch
@pytest.mark.timeout(180)
def test_live_clips_run_in_a_lowest_priority_process_and_its_death_costs_only_clips(small_model):
    from monitor.cnn.live import ClipEngine, load_clip_model

    rgb = np.random.default_rng(3).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    lms = _landmarks()
    with load_clip_model(small_model, allow_untrained=True)[0] as reference:
        want = float(reference.infer(np.stack([align_crop(rgb, lms, 32)] * 8))[0])
    runner, _ = load_clip_model(small_model, allow_untrained=True)
    engine = ClipEngine(runner, stride=4, report_p=True)
    try:
        pid = engine.worker.pid
        assert pid != os.getpid() and engine.worker.alive
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
        if hasattr(os, "SCHED_IDLE"):
            assert os.sched_getscheduler(pid) == os.SCHED_IDLE
            # from here on the answers are checked, not the priority: on a machine kept busy by other
            # jobs an idle-class process gets no CPU at all (by design), so the test lifts it back
            try:
                os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
            except PermissionError:
                pass
        assert not runner.is_active  # the model lives in the clip process only
        outs = []
        for f in range(8):
            outs += engine.frame("s", f, rgb, lms)
        outs += engine.end_stream("s")
        assert [(o["first_frame"], o["last_frame"]) for o in outs] == [(0, 7)]
        assert outs[0]["p"] == pytest.approx(want, abs=1e-5)  # the same model on the same clip
        clips = engine.stats.clips
        with pytest.raises(WorkerError, match="clips must be"):  # a bad clip is answered with its error
            engine.worker.infer(np.zeros((3, 32, 32, 3), np.uint8))
        assert engine.worker.alive

        os.kill(pid, signal.SIGKILL)  # the clip process dies (out of memory, say)
        engine.worker.proc.wait(10)
        got = []
        for f in range(8, 24):  # clips due at frames 15 and 19 (stride 4): the landmark path goes on
            got += engine.frame("s", f, rgb, lms)
        got += engine.end_stream("s")
        assert got == [] and engine.stats.clips == clips
        assert engine.stats.skipped >= 1  # lost clips are counted, not hidden
    finally:
        engine.close()
    assert not engine.worker.alive
