"""A minimal reader of the protobuf wire format: enough to read the face-geometry metadata inside
face_landmarker.task without the MediaPipe runtime or generated classes."""

from __future__ import annotations


class ProtoError(ValueError):
    """The bytes are not a protobuf message of the expected shape."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise ProtoError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ProtoError("varint too long")


def fields(buf: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) for each field in order; length-delimited values are bytes."""
    out = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wtype = key >> 3, key & 7
        if wtype == 0:
            value, i = _varint(buf, i)
        elif wtype == 1:
            value, i = buf[i:i + 8], i + 8
        elif wtype == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wtype == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ProtoError(f"unsupported wire type {wtype} for field {number}")
        if i > len(buf):
            raise ProtoError("truncated field")
        out.append((number, wtype, value))
    return out

