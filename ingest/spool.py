"""Durable disk spool: envelopes Kafka could not take in time, kept until re-published.

Append-only segment files (format in ``ingest.spool_format``). ``append`` is
called on the event loop and returns a future that completes once the record
is fsync'd: a background task writes and fsyncs pending records in batches
(every ``flush_interval_s`` or ``flush_records``, whichever first) in a worker
thread, so hooks never wait on disk IO one by one. The drainer reads durable
records from a position and ``commit``s the position once they are acked by
Kafka; segments wholly before it are deleted. A restart resumes at the committed
position (records after it may be published twice: at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import BinaryIO, Final

from ingest import spool_format as fmt
from ingest.spool_format import Position

log = logging.getLogger(__name__)

POSITION_FILE: Final = "position"
READ_CHUNK: Final = 1 << 20


class SpoolFull(Exception):
    """The spool has no room for the record (``spool_max_bytes``) or cannot be written.

    ``reason``: ``spool_full`` or ``spool_write_failed`` (the ``ingest.drops`` reasons)."""

    def __init__(self, message: str, reason: str = "spool_full") -> None:
        super().__init__(message)
        self.reason = reason


class DiskSpool:
    """One owner process; call ``open`` first, ``close`` last, everything else on one loop."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        *,
        flush_interval_s: float = 0.05,
        flush_records: int = 1000,
    ) -> None:
        self.directory, self.max_bytes = directory, max_bytes
        self.flush_interval_s, self.flush_records = flush_interval_s, flush_records
        self.segment_max = fmt.segment_bytes(max_bytes)
        self.sizes: dict[int, int] = {}  # segment seq -> bytes on disk (durable)
        self.committed = Position(0, 0)
        self.end = Position(0, 0)  # durable end: where the next flushed batch starts
        self.appended = 0
        self._pending: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._pending_bytes = 0
        self._unflushed = 0  # appended, not yet on disk (pending or being written)
        self._file: BinaryIO | None = None
        self._wake: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> None:
        """Scan the directory: existing segments are the backlog, new writes go to a new one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.iterdir():
            seq = fmt.segment_seq(path.name)
            if seq is not None:
                self.sizes[seq] = path.stat().st_size
        write_seq = max(self.sizes, default=0) + 1
        self.committed = self._read_position() or Position(min(self.sizes, default=write_seq), 0)
        self.end = Position(write_seq, 0)

    async def close(self) -> None:
        """Write and fsync everything appended, stop the flusher, close the file."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self._flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- appending (hook path) ---------------------------------------------------------------
    def append(self, payload: bytes) -> asyncio.Future[None]:
        """Queue one record; the future completes once it is on disk. Raises SpoolFull."""
        record = fmt.frame(payload)
        if not fmt.has_room(self.bytes_used, len(record), self.max_bytes):
            raise SpoolFull(f"disk spool full ({self.max_bytes} bytes, --spool-max-bytes)")
        if self._wake is None:
            self._wake = asyncio.Event()
            self._flusher = asyncio.create_task(self._flush_loop(self._wake), name="spool-flush")
        waiter = asyncio.get_running_loop().create_future()
        self._pending.append(record)
        self._waiters.append(waiter)
        self._pending_bytes += len(record)
        self.appended += 1
        self._unflushed += 1
        self._wake.set()
        return waiter

    async def _flush_loop(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            if len(self._pending) < self.flush_records:
                await asyncio.sleep(self.flush_interval_s)
            wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        records, waiters = self._pending, self._waiters
        if not records:
            return
        self._pending, self._waiters, self._pending_bytes = [], [], 0
        data = b"".join(records)
        try:
            end = await asyncio.to_thread(self._write, data, self.end)
        except OSError as exc:
            self._unflushed -= len(records)  # each waiter's owner counts and reports the loss
            log.debug("disk spool write failed, %d events not spooled: %s", len(records), exc)
            for waiter in waiters:
                if not waiter.done():
                    failed = SpoolFull(f"disk spool write failed: {exc}", "spool_write_failed")
                    waiter.set_exception(failed)
            return
        self._unflushed -= len(records)
        self.sizes[end.segment] = end.offset
        self.end = end
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _write(self, data: bytes, end: Position) -> Position:
        """Worker thread: roll the segment when full, append, fsync; the new end."""
        seq, size = end.segment, end.offset
        if self._file is not None and size >= self.segment_max:
            self._file.close()
            self._file, seq, size = None, seq + 1, 0
        if self._file is None:
            self._file = (self.directory / fmt.segment_name(seq)).open("ab")
            _fsync_dir(self.directory)
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        return Position(seq, size + len(data))

    # -- draining ----------------------------------------------------------------------------
    @property
    def bytes_used(self) -> int:
        return sum(self.sizes.values()) + self._pending_bytes

    @property
    def segments(self) -> int:
        return len(self.sizes)

    def caught_up(self, position: Position) -> bool:
        """Whether ``position`` is past every record appended (written or still pending)."""
        return position >= self.end and self._unflushed == 0

    async def read(self, start: Position, max_records: int) -> tuple[list[bytes], Position]:
        """Up to ``max_records`` durable records from ``start``, and the position after them."""
        sizes = dict(self.sizes)  # the flusher changes them while the worker thread reads
        return await asyncio.to_thread(_read, self.directory, sizes, self.end, start, max_records)

    async def commit(self, position: Position) -> None:
        """Everything before ``position`` is in Kafka: persist it, delete finished segments."""
        self.committed = position
        done = [s for s in self.sizes if s < position.segment and s != self.end.segment]
        await asyncio.to_thread(self._commit, position, done)
        for seq in done:
            self.sizes.pop(seq, None)

    def _commit(self, position: Position, done: list[int]) -> None:
        tmp = self.directory / (POSITION_FILE + ".tmp")
        tmp.write_bytes(position.render())
        tmp.replace(self.directory / POSITION_FILE)
        for seq in done:
            (self.directory / fmt.segment_name(seq)).unlink(missing_ok=True)

    def _read_position(self) -> Position | None:
        try:
            return fmt.parse_position((self.directory / POSITION_FILE).read_bytes())
        except FileNotFoundError:
            return None


def _read(
    directory: Path, sizes: dict[int, int], end: Position, start: Position, max_records: int
) -> tuple[list[bytes], Position]:
    """Worker thread: whole records from ``start`` up to ``end``, and the position after them."""

    def next_segment(seq: int) -> int:
        return min((s for s in sizes if s > seq), default=end.segment)

    out: list[bytes] = []
    position = start
    while len(out) < max_records and position < end:
        seq = position.segment
        if seq not in sizes:  # deleted already, or not written yet
            position = Position(next_segment(seq), 0)
            continue
        limit = end.offset if seq == end.segment else sizes[seq]
        path = directory / fmt.segment_name(seq)
        found = _read_records(path, position.offset, limit, max_records - len(out))
        out += [payload for payload, _ in found]
        if found:
            position = Position(seq, found[-1][1])
        if found and position.offset < limit:
            continue
        if seq == end.segment:
            break
        if position.offset < limit:
            log.warning("spool segment %d: torn or corrupt tail at %d skipped", seq, limit)
        position = Position(next_segment(seq), 0)
    return out, position


def _read_records(path: Path, offset: int, limit: int, max_records: int) -> list[tuple[bytes, int]]:
    """Whole records in ``path[offset:limit]``: (payload, absolute offset after it)."""
    with path.open("rb") as handle:
        handle.seek(offset)
        buffer = handle.read(min(limit - offset, READ_CHUNK))
        found = _parse(buffer, offset, max_records)
        if not found and len(buffer) >= fmt.HEADER.size:  # one record larger than a chunk?
            length, _ = fmt.HEADER.unpack_from(buffer)
            if len(buffer) < fmt.HEADER.size + length <= limit - offset:
                handle.seek(offset)
                found = _parse(handle.read(fmt.HEADER.size + length), offset, 1)
    return found


def _parse(buffer: bytes, base: int, max_records: int) -> list[tuple[bytes, int]]:
    found: list[tuple[bytes, int]] = []
    cursor = 0
    while len(found) < max_records:
        record = fmt.unframe(buffer, cursor)
        if record is None:
            break
        payload, cursor = record
        found.append((payload, base + cursor))
    return found


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
