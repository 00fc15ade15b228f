"""The embedded data directory: one owner process (chDB allows no second one).

Layout: ``chdb/`` (the database, with the processing state in its ``entity_state``
table), ``spool/`` (envelopes the bus could not hold or a stalled store could not take,
read back in order), ``dead-letter.ndjson`` (rows ClickHouse refused).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class DataDirBusy(RuntimeError):
    """Another process owns the data directory."""


class DataDirLock:
    """Exclusive advisory lock on ``<data_dir>/.lock`` for the life of the owner."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DataDirBusy(
                f"data directory {self.path.parent} is in use by another wcs-analytics process "
                f"(pid {owner}); stop it, or read the data through that service's HTTP API"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
