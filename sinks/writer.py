"""The ClickHouse writer: few, large inserts -- one per table per flush.

Who calls it: one owner thread adds rows (``add_events``, ``add_rows``, ``add_state``) and
decides when to flush (``due``: ``max_rows`` pending or the oldest row ``max_interval_ms``
old). ``take`` hands the pending batch over; ``write(batch)`` inserts it -- in the owner
thread (``flush``) or in an ``InsertThread`` so that inserts overlap processing. Commit
upstream offsets only after ``write`` returned. ``write`` drops each table from the batch
once inserted, so after a raise the same batch can be written again with what is left
(re-inserting is harmless anyway: every table collapses duplicates under ``FINAL``).
Rows are written as given: times as int epoch ms (the driver sends them as DateTime64(3)
ticks unchanged), bools as bool, Nullable columns may be None.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from events.envelope import Envelope
from events.tables import STATE, TABLES, Row
from sinks import freshness
from sinks.batch import Batch, Values
from sinks.deadletter import DeadLetter, DeadLetterFile
from sinks.inserter import TableInserter
from sinks.retry import RetryPolicy
from sinks.schema import check_identifier

__all__ = ["Batch", "ClickHouseWriter", "RetryPolicy"]

DEFAULT_RETRY = RetryPolicy()


class ClickHouseWriter:
    """See the module docstring. ``dead_letter``: a Path (NDJSON file) or any DeadLetter;
    None makes a rejected batch raise PermanentError."""

    def __init__(
        self,
        client: Any,
        database: str = "wcs",
        *,
        max_rows: int = 50_000,
        max_interval_ms: int = 1000,
        retry: RetryPolicy = DEFAULT_RETRY,
        now_ms: Callable[[], int],
        sleep: Callable[[float], None] = time.sleep,
        dead_letter: Path | DeadLetter | None = None,
        max_isolation_inserts: int = 64,
    ) -> None:
        if max_rows < 1:
            raise ValueError("need max_rows >= 1")
        self.database = check_identifier(database)
        self.max_rows = max_rows
        self.max_interval_ms = max_interval_ms
        self._now_ms = now_ms
        self._batch = Batch()
        self._first_pending_at: int | None = None
        self.freshness = freshness.histogram()  # hook received -> events row inserted
        sink = DeadLetterFile(dead_letter) if isinstance(dead_letter, Path) else dead_letter
        self._inserter = TableInserter(client, database, retry, sleep, sink, max_isolation_inserts)
        self.before_state: Callable[[], None] | None = None  # crash tests: between the two
        self.last_take: int | None = None  # wall ms of the last take (the last flush)

    @property
    def pending(self) -> int:
        return len(self._batch)

    @property
    def stats(self) -> dict[str, Any]:
        """Counters for /metrics (a fresh dict)."""
        counts = self._inserter.counts
        return {
            "rows_written": counts["rows_written"],
            "inserts": counts["inserts"],
            "retries": counts["retries"],
            "dead_lettered": counts["dead_lettered"],
            "pending": self.pending,
            "rows_written_by_table": dict(self._inserter.written_by_table),
            "dead_lettered_by_table": dict(self._inserter.dead_by_table),
        }

    def _started(self) -> None:
        if self._first_pending_at is None:
            self._first_pending_at = self._now_ms()

    def add_events(
        self, envelopes: Sequence[Envelope], bodies: Sequence[str | None] | None = None
    ) -> None:
        if envelopes:
            self._started()
            self._batch.add_events(envelopes, bodies)

    def add_events_columns(self, columns: list[list[Any]]) -> None:
        """``events`` rows built elsewhere as columns (``Batch.events`` of another batch)."""
        if columns[0]:
            self._started()
            self._batch.add_events_columns(columns)

    def add_envelope(self, envelope: Envelope) -> None:
        self.add_events([envelope])

    def add(self, rows: Iterable[Row]) -> None:
        """Rows of the entity and window tables (ValueError for an unknown table)."""
        rows = list(rows)
        if rows:
            self._started()
            self._batch.add_rows(rows)

    def add_state(self, rows: Iterable[Values]) -> None:
        self._batch.add_state(rows)

    def due(self) -> bool:
        """True once ``max_rows`` are pending or the oldest pending row is max_interval_ms old."""
        if self.pending >= self.max_rows:
            return True
        started = self._first_pending_at
        return started is not None and self._now_ms() - started >= self.max_interval_ms

    def interval_passed(self, since_ms: int | None) -> bool:
        """``max_interval_ms`` passed since ``since_ms`` (None: never)."""
        return since_ms is None or self._now_ms() - since_ms >= self.max_interval_ms

    def pending_events(self) -> list[list[Any]]:
        """The ``events`` columns collected for the next flush (read-only)."""
        return self._batch.events

    def take(self) -> Batch:
        """Hand the pending rows over (the writer starts a new batch)."""
        batch, self._batch, self._first_pending_at = self._batch, Batch(), None
        self.last_take = self._now_ms()
        return batch

    def write(self, batch: Batch) -> int:
        """Insert ``batch``, one insert per table; returns rows written. Thread-safe against
        the owner's ``add_*`` (it touches only ``batch``); not against another ``write``.

        Raises TransientError once the retry policy is spent, ConfigError for a
        schema/credential problem, and PermanentError for rejected rows when no
        dead letter is configured; tables written before the raise are gone from ``batch``.
        """
        written = 0
        if batch.event_count:
            written += self._inserter.write_columns("events", batch.events)
            freshness.observe_times(self.freshness, batch.events[1], self._now_ms())
            batch.events = Batch().events
        for table in [t for t in TABLES if t in batch.rows]:
            written += self._inserter.write(table, batch.rows[table])
            del batch.rows[table]
        if batch.state:  # last: the state describes the rows above (flush, then checkpoint)
            if self.before_state is not None:
                self.before_state()
            written += self._inserter.write(STATE.name, batch.state)
            batch.state = []
        return written

    def flush(self) -> int:
        """Write everything pending in this thread; on a raise the rest stays pending."""
        batch = self.take()
        try:
            return self.write(batch)
        except BaseException:
            self._restore(batch)
            raise

    def _restore(self, batch: Batch) -> None:
        """Put what ``write`` left of ``batch`` in front of what was added since."""
        if not len(batch):
            return
        newer, self._batch = self._batch, batch
        self._batch.add_events_columns(newer.events)
        for table, rows in newer.rows.items():
            self._batch.rows.setdefault(table, []).extend(rows)
        self._batch.add_state(newer.state)
        self._started()
