"""The wire format between capture clients and the engine: pure encoding, no sockets.

Client → engine, two frames: ``[header, pixels]``. The header is a fixed little-endian struct with a
magic and a version; pixels travel as the raw frame buffer. Engine → client: ``[json, *buffers]``
where the JSON names the message kind and the buffers carry float32 arrays (landmarks, blendshapes,
transformation matrix). Nothing is ever pickled.
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import dataclass
from enum import IntEnum, StrEnum

import numpy as np

VERSION = 1
MAGIC = b"FMF"
MAX_SIDE = 8192
MAX_MESSAGE_BYTES = MAX_SIDE * MAX_SIDE * 4 + 4096  # a bound for ZMQ_MAXMSGSIZE
DEFAULT_MAX_PIXELS = 4096 * 4096  # the largest frame (height × width) an engine or a broker takes by default


def max_part_bytes(max_pixels: int) -> int:
    """ZMQ_MAXMSGSIZE for frames of at most ``max_pixels``: 4 bytes a pixel plus room for a header."""
    return max_pixels * 4 + 4096


class Kind(IntEnum):
    FRAME = 1  # a frame to analyse
    END = 2  # the stream ended: the engine answers with an END once earlier frames are done
    PING = 3  # is the engine alive? answered with PONG


class PixelFormat(IntEnum):
    GRAY8 = 1
    BGR24 = 3
    BGRA32 = 4


_CHANNELS = {PixelFormat.GRAY8: 1, PixelFormat.BGR24: 3, PixelFormat.BGRA32: 4}
_STRUCT = struct.Struct("<3sBHHQqqIIHH16s32sI")
HEADER_BYTES = _STRUCT.size


class WireError(ValueError):
    """A message that does not follow the wire format; the reason is one short phrase."""


@dataclass(frozen=True, slots=True)
class FrameHeader:
    kind: Kind
    stream: uuid.UUID
    frame_id: int = 0
    t_capture_ns: int = 0  # CLOCK_MONOTONIC when the frame was captured (comparable across processes)
    t_media_us: int = 0  # media time from the stream's start
    height: int = 0
    width: int = 0
    pixel_format: PixelFormat = PixelFormat.BGR24
    step: str = ""  # protocol step name, or empty
    dropped_total: int = 0  # frames the capture side dropped so far on this stream

    @property
    def channels(self) -> int:
        return _CHANNELS[self.pixel_format]

    @property
    def pixel_bytes(self) -> int:
        return self.height * self.width * self.channels

    def pack(self) -> bytes:
        step = self.step.encode("utf-8")
        if len(step) > 32:
            raise WireError("step name longer than 32 bytes")
        return _STRUCT.pack(
            MAGIC, VERSION, int(self.kind), 0, self.frame_id, self.t_capture_ns, self.t_media_us,
            self.height, self.width, self.channels, int(self.pixel_format), self.stream.bytes, step,
            self.dropped_total,
        )

    @classmethod
    def unpack(cls, buf: bytes | memoryview) -> "FrameHeader":
        if len(buf) != HEADER_BYTES:
            raise WireError(f"header is {len(buf)} bytes, expected {HEADER_BYTES}")
        (magic, version, kind, _flags, frame_id, t_cap, t_media, h, w, ch, fmt, stream, step,
         dropped) = _STRUCT.unpack(buf)
        if magic != MAGIC:
            raise WireError("bad magic")
        if version != VERSION:
            raise WireError(f"unsupported header version {version}")
        try:
            kind = Kind(kind)
        except ValueError:
            raise WireError(f"unknown message kind {kind}") from None
        try:
            fmt = PixelFormat(fmt)
        except ValueError:
            raise WireError(f"unknown pixel format {fmt}") from None
        if kind == Kind.FRAME:
            if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
                raise WireError(f"frame size {w}x{h} out of range")
            if ch != _CHANNELS[fmt]:
                raise WireError(f"{ch} channels do not match pixel format {fmt.name}")
        try:
            step_text = step.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("step name is not UTF-8") from None
        return cls(kind, uuid.UUID(bytes=stream), frame_id, t_cap, t_media, h, w, fmt, step_text, dropped)


def frame_message(header: FrameHeader, pixels: np.ndarray) -> list:
    """The two message parts for a frame; `pixels` is sent without a copy."""
    if pixels.dtype != np.uint8 or not pixels.flags.c_contiguous:
        raise WireError("pixels must be a C-contiguous uint8 array")
    if pixels.nbytes != header.pixel_bytes:
        raise WireError(f"pixel buffer is {pixels.nbytes} bytes, header says {header.pixel_bytes}")
    return [header.pack(), pixels]


def pixel_format_for(image: np.ndarray) -> PixelFormat:
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return PixelFormat.GRAY8
    if image.ndim == 3 and image.shape[2] == 3:
        return PixelFormat.BGR24
    if image.ndim == 3 and image.shape[2] == 4:
        return PixelFormat.BGRA32
    raise WireError(f"cannot send an image of shape {image.shape}")


def decode_frame(parts: list) -> tuple[FrameHeader, np.ndarray | None]:
    """Validate a client message (``[header]`` or ``[header, pixels]``); return the header and a
    zero-copy view of the pixels for FRAME messages."""
    if not parts:
        raise WireError("empty message")
    header = FrameHeader.unpack(_buffer(parts[0]))
    if header.kind != Kind.FRAME:
        if len(parts) != 1:
            raise WireError(f"{header.kind.name} message has {len(parts)} parts, expected 1")
        return header, None
    if len(parts) != 2:
        raise WireError(f"frame message has {len(parts)} parts, expected 2")
    pixels = _buffer(parts[1])
    if len(pixels) != header.pixel_bytes:
        raise WireError(f"pixel buffer is {len(pixels)} bytes, header says {header.pixel_bytes}")
    shape = (header.height, header.width) if header.channels == 1 else (header.height, header.width, header.channels)
    return header, np.frombuffer(pixels, dtype=np.uint8).reshape(shape)


def _buffer(part) -> memoryview:
    """A flat byte view of a message part (zmq.Frame, bytes, or any buffer) without copying."""
    view = part.buffer if hasattr(part, "buffer") else memoryview(part)
    return view if (view.ndim == 1 and view.format in ("B", "b", "c")) else view.cast("B")


# ---- engine → client ------------------------------------------------------------------------------

N_LANDMARKS = 478
N_BLENDSHAPES = 52


class ReplyKind(StrEnum):
    """What a reply is; travels as its string value in the reply's JSON ``kind``."""

    RESULT = "result"  # one frame's landmarks and measures
    PONG = "pong"  # answers a PING (names the ping it answers)
    END = "end"  # the stream's END, after every frame before it
    REJECT = "reject"  # a malformed message, with the reason
    LOST = "lost"  # the broker lost the engine that held this frame (or the stream's END)


@dataclass(slots=True)
class Reply:
    """An engine reply: a JSON object plus optional float32 arrays."""

    meta: dict
    landmarks: np.ndarray | None = None  # (478, 3) float32, image pixels (x, y, z scaled like x)
    blendshapes: np.ndarray | None = None  # (52,) float32
    matrix: np.ndarray | None = None  # (4, 4) float32 facial transformation matrix

    @property
    def kind(self) -> ReplyKind:
        return ReplyKind(self.meta["kind"])

    def parts(self) -> list:
        meta = dict(self.meta, v=VERSION, has_face_arrays=self.landmarks is not None)
        out = [json.dumps(meta, separators=(",", ":")).encode()]
        if self.landmarks is not None:
            out += [np.ascontiguousarray(self.landmarks, np.float32),
                    np.ascontiguousarray(self.blendshapes, np.float32),
                    np.ascontiguousarray(self.matrix, np.float32)]
        return out

    @classmethod
    def from_parts(cls, parts: list) -> "Reply":
        if not parts:
            raise WireError("empty reply")
        try:
            meta = json.loads(bytes(_buffer(parts[0])))
        except (ValueError, UnicodeDecodeError):
            raise WireError("reply header is not JSON") from None
        if not isinstance(meta, dict) or meta.get("v") != VERSION or "kind" not in meta:
            raise WireError("reply header lacks version or kind")
        if meta["kind"] not in ReplyKind.__members__.values():
            raise WireError(f"unknown reply kind {meta['kind']!r}")
        if not meta.get("has_face_arrays"):
            if len(parts) != 1:
                raise WireError(f"reply has {len(parts)} parts, expected 1")
            return cls(meta)
        if len(parts) != 4:
            raise WireError(f"reply has {len(parts)} parts, expected 4")
        shapes = ((N_LANDMARKS, 3), (N_BLENDSHAPES,), (4, 4))
        arrays = []
        for part, shape in zip(parts[1:], shapes):
            buf = _buffer(part)
            if len(buf) != 4 * int(np.prod(shape)):
                raise WireError(f"reply array is {len(buf)} bytes, expected shape {shape}")
            arrays.append(np.frombuffer(buf, np.float32).reshape(shape))
        return cls(meta, *arrays)
