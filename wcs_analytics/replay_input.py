"""What ``replay`` reads: a file or a pipe, plain or gzip-compressed, or several files
merged by time.

Compression is recognised by the first bytes (the gzip magic), not by the name, so
``replay day.ndjson.gz`` and ``cat day.ndjson.gz | replay /dev/stdin`` both work. Every part
process of ``replay --jobs`` decompresses a compressed file itself.

Several files (``replay node1.ndjson node2.ndjson``: the logs of several nodes or ingest
replicas, each in its own time order) are read as one input: line by line, the next line is
the one with the earliest ``received_at`` among the files' next lines (ties: the file named
first), each file's own order kept. A line without a readable ``received_at`` follows the
line before it in its file. The same files give the same order every time, in one process
or in every part.
"""

from __future__ import annotations

import gzip
import heapq
import zlib
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

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


class _Time(msgspec.Struct):
    received_at: Any = None


_TIME = msgspec.json.Decoder(_Time)
LABELS_KEPT = 16_384  # the newest lines whose file and line number ``Input.where`` can name


class Input:
    """The non-empty lines ``replay`` reads from ``paths``, numbered, with bytes read so far
    (``done``) and the input's size when it measures progress (``total``, 0 when unknown).

    One path: numbers are its line numbers. Several: merged by time (module docstring),
    numbered in merged order over every line read; ``where(number)`` names the file and its
    line for the newest ``LABELS_KEPT`` lines. ``sizes``: read only that many bytes of each
    file (None: all of it). Raises InputError where a file cannot be read further: the
    lines before it (in merged order) were yielded."""

    def __init__(self, paths: Sequence[Path], sizes: Sequence[int | None] | None = None) -> None:
        if not paths:
            raise ValueError("no input")
        self.paths = list(paths)
        self.sizes = list(sizes) if sizes is not None else [None] * len(self.paths)
        self.done = 0
        self.total = 0
        self._totals: list[int | None] = [None] * len(self.paths)
        self._labels: dict[int, tuple[int, int]] = {}
        self._order: deque[int] = deque()

    def where(self, number: int) -> str:
        """``FILE:LINE`` of a line this input yielded (one of the newest ``LABELS_KEPT``)."""
        if len(self.paths) == 1:
            return f"{self.paths[0]}:{number}"
        index, line = self._labels.get(number, (-1, 0))
        return f"{self.paths[index]}:{line}" if index >= 0 else f"line {number} of the merged input"

    def lines(self) -> Generator[tuple[int, bytes], None, None]:
        if len(self.paths) == 1:
            yield from self._file(0)
            return
        files = [self._keyed(i) for i in range(len(self.paths))]
        labels, order = self._labels, self._order
        merged = heapq.merge(*files, key=_first)
        for number, (_, index, line_number, line) in enumerate(merged, start=1):
            labels[number] = (index, line_number)
            order.append(number)
            if len(order) > LABELS_KEPT:
                del labels[order.popleft()]
            yield number, line

    def _keyed(self, index: int) -> Iterator[tuple[int, int, int, bytes]]:
        """(time, file index, line number, line): the time of a line without one is the
        time of the line before it in its file."""
        last = 0
        for number, line in self._file(index):
            try:
                received_at = _TIME.decode(line).received_at
            except msgspec.DecodeError:
                received_at = None
            if type(received_at) is int:
                last = received_at
            yield last, index, number, line

    def _file(self, index: int) -> Iterator[tuple[int, bytes]]:
        path, size = self.paths[index], self.sizes[index]
        with open_input(path) as (handle, total):
            self._totals[index] = total if size is None else size
            known = [t for t in self._totals if t]
            self.total = sum(known) if len(known) == len(self._totals) else 0
            read = 0
            for number, line in numbered_lines(handle, path):
                if size is not None:
                    if read >= size:
                        break
                    line = line[: size - read]
                read += len(line)
                self.done += len(line)
                if number == 1:
                    line = line.removeprefix(BOM)
                if line.strip():
                    yield number, line


def _first(item: tuple[int, int, int, bytes]) -> int:
    return item[0]
