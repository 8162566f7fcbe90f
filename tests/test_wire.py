"""The wire format: frame headers, frame messages and engine replies, encoded and validated (no sockets)."""

import json
import uuid

import numpy as np
import pytest

from monitor.transport import wire

pytestmark = pytest.mark.fast


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
    rng = np.random.default_rng(1)
    lm, bs, m = rng.random((478, 3), np.float32), rng.random(52, np.float32), rng.random((4, 4), np.float32)
    r = wire.Reply({"kind": wire.ReplyKind.RESULT, "frame": 3}, lm, bs, m)
    parts = [bytes(memoryview(p)) for p in r.parts()]
    assert json.loads(parts[0]) == {"kind": "result", "frame": 3, "v": wire.VERSION, "has_face_arrays": True}
    back = wire.Reply.from_parts(parts)
    assert back.meta["frame"] == 3 and back.kind is wire.ReplyKind.RESULT and back.meta["kind"] == "result"
    np.testing.assert_array_equal(back.landmarks, lm)
    np.testing.assert_array_equal(back.blendshapes, bs)
    np.testing.assert_array_equal(back.matrix, m)


def test_reply_without_arrays_and_every_kind_round_trips():
    for kind in wire.ReplyKind:
        back = wire.Reply.from_parts(wire.Reply({"kind": kind, "reason": "x"}).parts())
        assert back.kind is kind and back.landmarks is None and back.meta["reason"] == "x"
    assert {k.value for k in wire.ReplyKind} == {"result", "pong", "end", "reject", "lost"}


@pytest.mark.parametrize("parts, reason", [
    ([], "empty reply"),
    ([b"not json"], "reply header is not JSON"),
    ([b'[1, 2]'], "lacks version or kind"),
    ([b'{"kind":"result"}'], "lacks version or kind"),
    ([b'{"v":2,"kind":"result"}'], "lacks version or kind"),
    ([b'{"v":1,"kind":"bogus"}'], "unknown reply kind 'bogus'"),
    ([b'{"v":1,"kind":"end"}', b"x"], "reply has 2 parts, expected 1"),
    ([b'{"v":1,"kind":"result","has_face_arrays":true}', b"x"], "reply has 2 parts, expected 4"),
    ([b'{"v":1,"kind":"result","has_face_arrays":true}', b"\0" * (478 * 12), b"\0" * 207, b"\0" * 64],
     r"reply array is 207 bytes, expected shape \(52,\)"),
])
def test_malformed_replies_rejected(parts, reason):
    with pytest.raises(wire.WireError, match=reason):
        wire.Reply.from_parts(parts)


FIELDS = ("magic", "version", "kind", "flags", "frame_id", "t_capture_ns", "t_media_us", "height", "width",
          "channels", "pixel_format", "stream", "step", "dropped_total")


def raw_header(**changes) -> bytes:
    """header().pack() with some struct fields replaced."""
    fields = dict(zip(FIELDS, wire._STRUCT.unpack(header().pack())))
    return wire._STRUCT.pack(*{**fields, **changes}.values())


@pytest.mark.parametrize("changes, reason", [
    (dict(channels=4), "4 channels do not match pixel format BGR24"),
    (dict(pixel_format=7), "unknown pixel format 7"),
    (dict(step=b"\xff\xfe"), "step name is not UTF-8"),
    (dict(height=0), "frame size 5x0 out of range"),
    (dict(width=wire.MAX_SIDE + 1), f"frame size {wire.MAX_SIDE + 1}x4 out of range"),
])
def test_header_fields_are_checked(changes, reason):
    assert wire.FrameHeader.unpack(raw_header()).step == "smile"  # unchanged fields decode as packed
    with pytest.raises(wire.WireError, match=reason):
        wire.FrameHeader.unpack(raw_header(**changes))


def test_control_headers_carry_no_frame_size():
    h = wire.FrameHeader.unpack(raw_header(kind=int(wire.Kind.PING), height=0, width=0))
    assert h.kind is wire.Kind.PING and h.pixel_bytes == 0


def test_frame_message_refuses_pixels_that_do_not_fit_the_header():
    with pytest.raises(wire.WireError, match="C-contiguous uint8"):
        wire.frame_message(header(), np.zeros((4, 5, 3), np.float32))
    with pytest.raises(wire.WireError, match="C-contiguous uint8"):
        wire.frame_message(header(), np.zeros((5, 4, 3), np.uint8).transpose(1, 0, 2))
    with pytest.raises(wire.WireError, match="pixel buffer is 20 bytes, header says 60"):
        wire.frame_message(header(), np.zeros((4, 5), np.uint8))
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    h, pixels = wire.decode_frame(wire.frame_message(header(pixel_format=wire.PixelFormat.GRAY8), gray))
    assert h.channels == 1 and pixels.shape == (4, 5) and np.array_equal(pixels, gray)
