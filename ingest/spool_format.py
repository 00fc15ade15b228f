"""The disk spool's on-disk format and bounds: pure functions, no IO.

A spool is a directory of append-only segment files ``segment-<20-digit seq>.log``
(seq grows by one per segment, so names sort in write order) plus a ``position``
file ``"<seq> <offset>\\n"``: everything before it was re-published to Kafka.
A record is framed as ``<u32 length><u32 crc32(payload)><payload>`` (big-endian);
a torn or corrupt tail (crash during a write) ends the segment's readable part.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

HEADER: Final = struct.Struct(">II")
SEGMENT_PREFIX: Final = "segment-"
SEGMENT_SUFFIX: Final = ".log"
MAX_RECORD_BYTES: Final = 64 << 20  # far above any envelope (bodies are capped at 1 MiB)


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A place in the spool: segment number and byte offset inside it."""

    segment: int
    offset: int

    def render(self) -> bytes:
        return b"%d %d\n" % (self.segment, self.offset)


def parse_position(text: bytes) -> Position | None:
    """The position file's content, or None when it is missing or damaged."""
    parts = text.split()
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        return None
    return Position(int(parts[0]), int(parts[1]))


def segment_name(seq: int) -> str:
    return f"{SEGMENT_PREFIX}{seq:020d}{SEGMENT_SUFFIX}"


def segment_seq(name: str) -> int | None:
    """The sequence number of a segment file name; None for any other file."""
    if not (name.startswith(SEGMENT_PREFIX) and name.endswith(SEGMENT_SUFFIX)):
        return None
    digits = name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]
    return int(digits) if len(digits) == 20 and digits.isdigit() else None


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def unframe(buffer: bytes, offset: int) -> tuple[bytes, int] | None:
    """The record starting at ``offset`` and the offset after it.

    None when the buffer ends before the record does (not written yet, or a torn
    tail) or the record is corrupt (bad length or checksum).
    """
    end_header = offset + HEADER.size
    if end_header > len(buffer):
        return None
    length, crc = HEADER.unpack_from(buffer, offset)
    end = end_header + length
    if length > MAX_RECORD_BYTES or end > len(buffer):
        return None
    payload = buffer[end_header:end]
    if zlib.crc32(payload) != crc:
        return None
    return payload, end


def segment_bytes(max_bytes: int) -> int:
    """Roll to a new segment after this many bytes: 1/8 of the bound, 1 KiB to 64 MiB."""
    return max(1 << 10, min(64 << 20, max_bytes // 8))


def has_room(used: int, record: int, max_bytes: int) -> bool:
    """Whether a framed record of ``record`` bytes fits when ``used`` bytes are spooled."""
    return used + record <= max_bytes
