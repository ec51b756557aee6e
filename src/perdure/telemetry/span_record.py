"""A span that has ended, and the bytes it travels as between Perdure's processes.

A record is encoded as a frame: its length (4 bytes, little-endian) and its fields written by
``marshal``, which builds nothing but plain values when read back and costs about 1 µs a record
(pickling the record's dataclass cost 2.8 µs). Both ends run the same interpreter (a worker
process and the export process are started with the server's ``sys.executable``), as marshal's
format requires. This module imports nothing of Perdure: the export process loads it alone.
"""

from __future__ import annotations

import marshal
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanKind

AttributeValue = str | int | float | bool

_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class SpanRecord:
    """A span that has ended, in a sampled trace (times in epoch seconds).

    ``parent_span_id`` 0 makes it the trace's root; ``error`` is ``(type, message)``;
    attributes that are None are left out.
    """

    trace_id: int
    span_id: int
    parent_span_id: int
    name: str
    start: float
    end: float
    attributes: Mapping[str, AttributeValue | None]
    error: tuple[str, str] | None = None
    kind: SpanKind = SpanKind.INTERNAL

    def frame(self) -> bytes:
        """The record as one frame (see the module's docstring)."""
        attributes = self.attributes if type(self.attributes) is dict else dict(self.attributes)
        return frame((
            self.trace_id, self.span_id, self.parent_span_id, self.name, self.start, self.end,
            attributes, self.error, self.kind.value,
        ))  # fmt: skip


def frame(value: Any) -> bytes:
    """``value`` (plain values alone: numbers, text, bytes, tuples, lists, dicts) as one frame."""
    body = marshal.dumps(value)
    return _LENGTH.pack(len(body)) + body


def whole_frames(data: bytes | bytearray) -> Iterator[tuple[int, int]]:
    """Where the value of each whole frame ``data`` starts with begins and ends: it is
    ``marshal.loads(data[begin:end])``, and the next frame starts at ``end`` (a frame cut short at
    the end of ``data`` is left out)."""
    at = 0
    while at + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, at)
        end = at + _LENGTH.size + length
        if end > len(data):
            return
        yield at + _LENGTH.size, end
        at = end


class FrameError(ValueError):
    """Bytes that are not a frame of a span record; ``records``: those of the whole frames before them."""

    def __init__(self, message: str, records: list[SpanRecord]) -> None:
        super().__init__(message)
        self.records = records


def frames(records: list[SpanRecord]) -> bytes:
    """The records as consecutive frames."""
    return b"".join(record.frame() for record in records)


def read_frames(data: bytes) -> tuple[list[SpanRecord], int]:
    """The records of the whole frames ``data`` starts with, and the bytes they take (a frame cut
    short at the end is left for more bytes to complete it).

    Raises ``FrameError`` where the bytes are not a frame.
    """
    records: list[SpanRecord] = []
    used = 0
    for begin, end in whole_frames(data):
        try:
            trace_id, span_id, parent, name, start, stop, attributes, error, kind = marshal.loads(data[begin:end])
            records.append(SpanRecord(trace_id, span_id, parent, name, start, stop, attributes, error, SpanKind(kind)))
        except (EOFError, ValueError, TypeError) as problem:
            raise FrameError(f"bytes {used}-{end} are not a span record ({problem})", records) from problem
        used = end
    return records, used
