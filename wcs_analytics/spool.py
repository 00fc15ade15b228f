"""Overflow spool: envelopes the bounded bus could not take, kept on disk for the next start.

Appended as NDJSON (one orjson envelope a line) by the hook path when the bus is full, so
WCS is answered without waiting for analytics. The next start (or ``wcs-analytics
replay``) feeds them through the pipeline and removes them.

When the spool cannot be written (directory unwritable, disk full) the envelope is not
kept: it is counted in ``drops`` (``spool_write_failed``) and, with ``reject=True``
(``--spool-full reject``), refused with ``BusRejected`` so WCS gets a 503 instead of a 200.
Each line is one unbuffered write, so a counted envelope is in the page cache or was
reported lost, never silently in a buffer.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from io import FileIO
from pathlib import Path

from events.bus import BusRejected
from events.envelope import Envelope, EnvelopeError, decode, encode
from ingest.drops import DropLog

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0


class OverflowSpool:
    def __init__(self, directory: Path, drops: DropLog | None = None, reject: bool = False):
        self.directory = directory
        self.drops = drops if drops is not None else DropLog()
        self.reject = reject
        self._file: FileIO | None = None
        self._logged_at = -LOG_EVERY_S
        self.written = 0

    def append(self, envelope: Envelope) -> None:
        """Called on the event loop when the bus is full: one unbuffered append, no fsync.

        Raises BusRejected only when the line could not be written and ``reject`` is set."""
        line = encode(envelope) + b"\n"
        try:
            self._write(line)
        except OSError as exc:
            self._discard()
            self.drops.note("spool_write_failed", f"{self.directory}: {exc}", rejected=self.reject)
            if self.reject:
                message = f"event refused: the overflow spool cannot be written ({exc})"
                raise BusRejected(message) from None
            return
        self.written += 1

    def append_lines(self, lines: list[bytes]) -> int:
        """Envelope lines already encoded (a stalled store's unwritten batches): one write;
        returns how many were kept (0 when the spool cannot be written, counted as drops)."""
        if not lines:
            return 0
        try:
            self._write(b"".join(lines))
        except OSError as exc:
            self._discard()
            self.drops.note("spool_write_failed", f"{self.directory}: {exc}", count=len(lines))
            return 0
        self.written += len(lines)
        return len(lines)

    def rotate(self) -> None:
        """Close the file being appended to: later appends go to a new one, so every file
        ``files()`` lists can be read to its end."""
        self.close()

    def _write(self, line: bytes) -> None:
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"overflow-{time.time_ns()}.ndjson"
            self._file = FileIO(path, "ab")
            now = time.monotonic()
            if now - self._logged_at >= LOG_EVERY_S:  # a stall rotates often: not a flood
                self._logged_at = now
                log.warning("spooling envelopes (bus full or store stalled) to %s", path)
        start = self._file.tell()
        try:
            view = memoryview(line)
            while view:
                written = self._file.write(view)
                view = view[written or 0 :]
        except OSError:
            self._file.truncate(start)  # no torn line for the next start to trip over
            raise

    def _discard(self) -> None:
        """Drop the current file handle after a failure: the next append starts afresh."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove(self, path: Path) -> None:
        """A spool file whose envelopes are written to the database."""
        path.unlink(missing_ok=True)

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("overflow-*.ndjson") if p.is_file())

    @staticmethod
    def read(path: Path) -> Iterator[Envelope]:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield decode(line)
                except EnvelopeError as exc:
                    log.error("%s:%d: skipped, %s", path, number, exc)
