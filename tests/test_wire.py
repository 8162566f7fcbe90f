import uuid

import numpy as np
import pytest

from monitor.transport import wire


def header(**kw):
    base = dict(kind=wire.Kind.FRAME, stream=uuid.uuid4(), frame_id=7, t_capture_ns=123, t_media_us=456,
                height=4, width=5, pixel_format=wire.PixelFormat.BGR24, step="smile", dropped_total=2)
    base.update(kw)
    return wire.FrameHeader(**base)


def test_header_round_trip():
    h = header()
    assert wire.FrameHeader.unpack(h.pack()) == h


def test_frame_message_is_zero_copy_view():
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    parts = wire.frame_message(header(), img)
    got_header, pixels = wire.decode_frame([parts[0], memoryview(img)])
    assert got_header.frame_id == 7
    np.testing.assert_array_equal(pixels, img)


@pytest.mark.parametrize("mutate, reason", [
    (lambda b: b"XYZ" + b[3:], "bad magic"),
    (lambda b: b[:3] + bytes([9]) + b[4:], "unsupported header version"),
    (lambda b: b[:-1], "header is"),
    (lambda b: b[:4] + (99).to_bytes(2, "little") + b[6:], "unknown message kind"),
])
def test_bad_headers_are_rejected_with_a_reason(mutate, reason):
    raw = mutate(header().pack())
    with pytest.raises(wire.WireError, match=reason):
        wire.decode_frame([raw, b"\0" * 60])


def test_wrong_pixel_size_rejected():
    with pytest.raises(wire.WireError, match="pixel buffer is 59 bytes, header says 60"):
        wire.decode_frame([header().pack(), b"\0" * 59])


def test_frame_without_pixels_rejected():
    with pytest.raises(wire.WireError, match="expected 2"):
        wire.decode_frame([header().pack()])


def test_oversized_frame_rejected():
    with pytest.raises(wire.WireError, match="out of range"):
        wire.decode_frame([header(height=wire.MAX_SIDE + 1).pack(), b""])


def test_control_message_has_no_pixels():
    h = header(kind=wire.Kind.END)
    assert wire.decode_frame([h.pack()]) == (h, None)
    with pytest.raises(wire.WireError):
        wire.decode_frame([h.pack(), b"x"])


def test_long_step_name_refused():
    with pytest.raises(wire.WireError, match="longer than 32"):
        header(step="x" * 40).pack()


def test_pixel_format_for_images():
    assert wire.pixel_format_for(np.zeros((2, 2), np.uint8)) == wire.PixelFormat.GRAY8
    assert wire.pixel_format_for(np.zeros((2, 2, 4), np.uint8)) == wire.PixelFormat.BGRA32
    with pytest.raises(wire.WireError):
        wire.pixel_format_for(np.zeros((2, 2, 2), np.uint8))


def test_reply_round_trip_with_arrays():
    lm = np.random.default_rng(1).random((478, 3), np.float32)
    r = wire.Reply({"kind": "result", "frame": 3}, lm, np.ones(52, np.float32), np.eye(4, dtype=np.float32))
    back = wire.Reply.from_parts([bytes(memoryview(p)) for p in r.parts()])
    assert back.meta["frame"] == 3
    np.testing.assert_array_equal(back.landmarks, lm)


@pytest.mark.parametrize("parts", [[], [b"not json"], [b'{"kind":"result"}'], [b'{"v":1,"kind":"result","has_face_arrays":true}', b"x"]])
def test_malformed_replies_rejected(parts):
    with pytest.raises(wire.WireError):
        wire.Reply.from_parts(parts)
