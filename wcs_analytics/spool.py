"""Overflow spool: envelopes the bounded bus could not take, kept on disk, never dropped.

Appended as NDJSON (one orjson envelope a line) by the hook path when the bus
is full, so WCS is answered without waiting for analytics. The next start (or
``wcs-analytics replay``) feeds them through the pipeline and removes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from events.envelope import Envelope, EnvelopeError, decode, encode

log = logging.getLogger(__name__)


class OverflowSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: BinaryIO | None = None
        self.written = 0

    def append(self, envelope: Envelope) -> None:
        """Called on the event loop when the bus is full; a buffered append, no fsync."""
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"overflow-{time.time_ns()}.ndjson"
            self._file = path.open("ab")
            log.warning("bus full: spooling envelopes to %s", path)
        self._file.write(encode(envelope) + b"\n")
        self.written += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

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
