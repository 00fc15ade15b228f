"""What ``replay`` reads: a file or a pipe, plain or gzip-compressed.

Compression is recognised by the first bytes (the gzip magic), not by the name, so
``replay day.ndjson.gz`` and ``cat day.ndjson.gz | replay /dev/stdin`` both work. Every part
process of ``replay --jobs`` decompresses a compressed file itself.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, as Windows editors write: not part of line 1
# what reading a damaged or cut-short input raises: a truncated or corrupt gzip stream
# (EOFError, gzip.BadGzipFile, zlib.error), a device error (OSError)
UNREADABLE = (EOFError, OSError, zlib.error)


class InputError(Exception):
    """The input cannot be read to its end; the lines before the damage were replayed."""


def numbered_lines(handle: BinaryIO, path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of ``handle``, from 1; raises InputError where it cannot be read
    further (only reading is watched: what the caller does with a line is its own)."""
    lines = iter(handle)
    number = 0
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except UNREADABLE as exc:
            raise InputError(
                f"{path}: unreadable after line {number} ({type(exc).__name__}: {exc})"
            ) from exc
        number += 1
        yield number, line


def is_compressed(path: Path) -> bool:
    """Whether a regular file starts with the gzip magic (False for anything else)."""
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


@contextmanager
def open_input(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """The input's lines (decompressed when it is gzip) and its size in bytes when that
    measures progress (a plain regular file; 0 for a pipe or compressed input)."""
    with path.open("rb") as raw:
        if raw.peek(2)[:2] == GZIP_MAGIC:  # peek works on a pipe too: nothing is consumed
            with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
                yield unpacked, 0  # type: ignore[misc]
        else:
            yield raw, path.stat().st_size if path.is_file() else 0
