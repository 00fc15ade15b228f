"""The batching ClickHouse writer: bounded buffer, coalescing, one insert per table per flush.

Who calls it: the processor runner, from one thread. ``add`` never blocks and
never drops: a full buffer raises ``Backpressure``. ``flush`` blocks on the
database (and on retry backoff). Commit upstream offsets only after ``flush``
returned: rows stay pending whenever it raises, and re-inserting them later is
harmless because every table collapses duplicates under ``FINAL``. Rows are
written as given: times as int epoch ms (the driver sends them as DateTime64(3)
ticks unchanged), bools as bool, Nullable columns may be None.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from events.envelope import Envelope
from events.tables import Row
from sinks import freshness
from sinks.buffer import PendingBuffer
from sinks.deadletter import DeadLetter, DeadLetterFile
from sinks.inserter import TableInserter
from sinks.retry import RetryPolicy
from sinks.schema import check_identifier, envelope_row

__all__ = ["ClickHouseWriter", "RetryPolicy"]

DEFAULT_RETRY = RetryPolicy()


class ClickHouseWriter:
    """Buffers rows and writes them in batches; see the module docstring for the contract.

    ``dead_letter``: a Path (NDJSON file) or any DeadLetter; None makes a
    rejected batch raise PermanentError. ``coalesce=False`` keeps every row
    (the benchmark baseline).
    """

    def __init__(
        self,
        client: Any,
        database: str = "wcs",
        *,
        max_rows: int = 5000,
        max_interval_ms: int = 1000,
        max_pending_rows: int = 200_000,
        retry: RetryPolicy = DEFAULT_RETRY,
        now_ms: Callable[[], int],
        sleep: Callable[[float], None] = time.sleep,
        dead_letter: Path | DeadLetter | None = None,
        coalesce: bool = True,
        max_isolation_inserts: int = 64,
    ) -> None:
        if not 1 <= max_rows <= max_pending_rows:
            raise ValueError("need 1 <= max_rows <= max_pending_rows")
        self.database = check_identifier(database)
        self.max_rows = max_rows
        self.max_interval_ms = max_interval_ms
        self.max_pending_rows = max_pending_rows
        self._now_ms = now_ms
        self._buffer = PendingBuffer(coalesce=coalesce)
        self._first_pending_at: int | None = None
        self.freshness = freshness.histogram()  # hook received -> events row inserted
        sink = DeadLetterFile(dead_letter) if isinstance(dead_letter, Path) else dead_letter
        self._inserter = TableInserter(client, database, retry, sleep, sink, max_isolation_inserts)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    @property
    def stats(self) -> dict[str, Any]:
        """Counters for /metrics (a fresh dict)."""
        counts = self._inserter.counts
        return {
            "rows_written": counts["rows_written"],
            "inserts": counts["inserts"],
            "retries": counts["retries"],
            "dead_lettered": counts["dead_lettered"],
            "coalesced": self._buffer.coalesced,
            "pending": self.pending,
            "rows_written_by_table": dict(self._inserter.written_by_table),
            "dead_lettered_by_table": dict(self._inserter.dead_by_table),
        }

    def add(self, rows: Iterable[Row]) -> None:
        """Buffer rows (all or nothing). Raises Backpressure when the pending bound would be
        exceeded and ValueError for a row that breaks the table contract."""
        was_empty = self.pending == 0
        self._buffer.add(rows, self.max_pending_rows)
        if was_empty and self.pending:
            self._first_pending_at = self._now_ms()

    def add_envelope(self, envelope: Envelope) -> None:
        self.add([envelope_row(envelope)])

    def due(self) -> bool:
        """True once ``max_rows`` are pending or the oldest pending row is max_interval_ms old."""
        if self.pending >= self.max_rows:
            return True
        started = self._first_pending_at
        return started is not None and self._now_ms() - started >= self.max_interval_ms

    def flush(self) -> int:
        """Write everything pending, one insert per table; returns rows written.

        Raises TransientError once the retry policy is spent, ConfigError for a
        schema/credential problem, and PermanentError for rejected rows when no
        dead letter is configured. On any raise, the table that failed and the
        ones after it stay pending.
        """
        written = 0
        for table in self._buffer.tables():
            rows = self._buffer.rows(table)
            written += self._inserter.write(table, rows)
            if table == "events":
                freshness.observe_rows(self.freshness, rows, self._now_ms())
            self._buffer.drop(table)
        if not self.pending:
            self._first_pending_at = None
        return written
