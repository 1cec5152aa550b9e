"""Length-prefixed binary frames of sensor readings: the input of :class:`minireduce.jobs.SensorStats`.

A frame is a big-endian ``uint32`` length (of what follows it), a ``uint16`` sensor id and ``(length - 2) / 8``
readings as big-endian IEEE 754 doubles. A block of input is frames back to back, with nothing between them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence

__all__ = ["HEADER", "encode_frames", "parse_frames_naive", "parse_frames_optimized"]

#: The fixed part of a frame: its length (not counting these 4 bytes), then the sensor id.
HEADER = struct.Struct(">IH")
_LENGTH_SIZE = 4
_SENSOR_SIZE = 2
_READING_SIZE = 8

Frame = tuple[int, tuple[float, ...]]


def encode_frames(frames: Iterable[tuple[int, Sequence[float]]]) -> bytes:
    """The bytes of ``frames`` ((sensor id, readings) pairs), back to back. Used to make input, so kept simple."""
    parts = []
    for sensor, readings in frames:
        parts.append(HEADER.pack(_SENSOR_SIZE + _READING_SIZE * len(readings), sensor))
        parts.append(struct.pack(f">{len(readings)}d", *readings))
    return b"".join(parts)


def _bad_length(length: int) -> ValueError:
    return ValueError(f"bad frame length {length}: must be 2 plus a multiple of 8")


def _truncated(length: int, available: int) -> ValueError:
    return ValueError(f"truncated frame: its header announces {length} bytes, {available} remain")


def parse_frames_naive(data: bytes) -> Iterator[Frame]:
    """Parse by slicing: every slice of a ``bytes`` is a new ``bytes`` holding a copy.

    Per frame that is the length field, the frame, each of its two fields, and the whole rest of the buffer (so
    that the next frame starts at offset 0): five new ``bytes``, and a number of copied bytes that grows with the
    square of the buffer's size. The readings' format string is formatted again for every frame, too.
    """
    while data:
        length = int.from_bytes(data[:_LENGTH_SIZE], "big")
        frame = data[_LENGTH_SIZE : _LENGTH_SIZE + length]
        if length < _SENSOR_SIZE or (length - _SENSOR_SIZE) % _READING_SIZE:
            raise _bad_length(length)
        if len(frame) < length:
            raise _truncated(length, len(frame))
        data = data[_LENGTH_SIZE + length :]
        (sensor,) = struct.unpack(">H", frame[:_SENSOR_SIZE])
        count = (length - _SENSOR_SIZE) // _READING_SIZE
        yield sensor, struct.unpack(f">{count}d", frame[_SENSOR_SIZE:])


#: One compiled ``struct.Struct`` per number of readings, made on first use (most inputs use a handful).
_READINGS: dict[int, struct.Struct] = {}
#: Beyond this many sizes, new ones are compiled for each frame and not kept: odd input cannot grow the cache.
_READINGS_CACHE_SIZE = 64


def parse_frames_optimized(data: bytes) -> Iterator[Frame]:
    """Parse through a ``memoryview``: slicing it makes a view of the same bytes, and copies none of them.

    The header and the readings are unpacked in place (``unpack_from`` reads at an offset, so neither is sliced
    out first), and the only new object per frame, apart from the readings themselves, is the view of the rest
    of the buffer: a fixed-size object, however large the buffer. The readings' ``Struct`` is looked up by count,
    not formatted again. Offsets are relative to the current frame, so they stay small: Python's cached ints, for
    frames of up to 31 readings. A short buffer is detected by ``unpack_from`` itself, since ``len()`` of a large
    buffer would be a new int per frame; the numbers for the error message are worked out on the error path only.
    """
    rest = memoryview(data)
    readings_by_count = _READINGS
    while rest:
        try:
            length, sensor = HEADER.unpack_from(rest)
        except struct.error:  # less than a header left: report it as the naive parser does
            length = int.from_bytes(rest[:_LENGTH_SIZE], "big")
            if length < _SENSOR_SIZE or (length - _SENSOR_SIZE) % _READING_SIZE:
                raise _bad_length(length) from None
            raise _truncated(length, max(len(rest) - _LENGTH_SIZE, 0)) from None
        if length < _SENSOR_SIZE or (length - _SENSOR_SIZE) % _READING_SIZE:
            raise _bad_length(length)
        count = length >> 3  # == (length - 2) // 8, since length is 2 plus a multiple of 8
        readings = readings_by_count.get(count)
        if readings is None:
            readings = struct.Struct(f">{count}d")
            if len(readings_by_count) < _READINGS_CACHE_SIZE:
                readings_by_count[count] = readings
        try:
            values = readings.unpack_from(rest, HEADER.size)
        except struct.error:
            raise _truncated(length, len(rest) - _LENGTH_SIZE) from None
        yield sensor, values
        rest = rest[_LENGTH_SIZE + length :]
