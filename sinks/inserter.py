"""One table's batch into ClickHouse: retried when transient, bisected when rejected.

``TableInserter.write`` blocks on the database and on retry backoff. Rows the
database rejects (PermanentError) are isolated by bisection and handed to the
dead letter; without one configured the PermanentError propagates. Counters
feed the writer's ``stats``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from events.tables import TABLES
from sinks.batch import Values, event_rows
from sinks.deadletter import DeadLetter
from sinks.errors import PermanentError, TransientError, translated
from sinks.retry import RetryPolicy, call_with_retry
from sinks.schema import column_types

log = logging.getLogger(__name__)

BUDGET_SPENT = " (isolation budget spent: batch not split further)"


class TableInserter:
    def __init__(
        self,
        client: Any,
        database: str,
        retry: RetryPolicy,
        sleep: Callable[[float], None],
        dead_letter: DeadLetter | None,
        max_isolation_inserts: int,
    ) -> None:
        self._client = client
        self._database = database
        self._retry = retry
        self._sleep = sleep
        self._dead_letter = dead_letter
        self._max_isolation_inserts = max_isolation_inserts
        self._isolation_left = 0
        self.counts: Counter[str] = Counter()
        self.written_by_table: Counter[str] = Counter()
        self.dead_by_table: Counter[str] = Counter()

    def write(self, table: str, rows: list[Values]) -> int:
        """Insert ``rows`` into ``table``; returns rows written (the rest were dead-lettered).

        Raises TransientError once retries are spent, ConfigError, or
        PermanentError when no dead letter is configured.
        """
        try:
            return self._insert(table, rows)
        except PermanentError as exc:
            return self._rejected(table, rows, exc)

    def write_columns(self, table: str, columns: list[list[Any]]) -> int:
        """``write`` for data already in columns (``events``: no row dicts on the hot path)."""
        try:
            return self._insert(table, None, columns)
        except PermanentError as exc:
            return self._rejected(table, event_rows(columns), exc)

    def _rejected(self, table: str, rows: list[Values], exc: PermanentError) -> int:
        if self._dead_letter is None:
            raise exc
        self._isolation_left = self._max_isolation_inserts
        return self._isolate(table, rows, str(exc))

    def _isolate(self, table: str, rows: list[Values], reason: str) -> int:
        """Bisect a rejected batch: write the good halves, dead-letter single bad rows.
        At most ``max_isolation_inserts`` inserts; then a failing part is dead-lettered whole."""
        if len(rows) == 1:
            self._write_dead(table, rows, reason)
            return 0
        written = 0
        mid = len(rows) // 2
        for part in (rows[:mid], rows[mid:]):
            if self._isolation_left <= 0:
                self._write_dead(table, part, reason + BUDGET_SPENT)
                continue
            self._isolation_left -= 1
            try:
                written += self._insert(table, part)
            except PermanentError as exc:
                written += self._isolate(table, part, str(exc))
        return written

    def _insert(
        self, table: str, rows: list[Values] | None, columns: list[list[Any]] | None = None
    ) -> int:
        names = TABLES[table].column_names
        if columns is None:
            assert rows is not None
            # column-oriented skips the driver's row->column pivot
            try:
                columns = [[values[name] for values in rows] for name in names]
            except KeyError as exc:
                raise PermanentError(f"{table}: row without column {exc}") from None
        count = len(columns[0]) if columns else 0
        data = columns
        call_with_retry(
            lambda: self._insert_once(table, data), self._retry, self._sleep, self._on_retry
        )
        self.counts["inserts"] += 1
        self.counts["rows_written"] += count
        self.written_by_table[table] += count
        return count

    def _insert_once(self, table: str, columns: list[list[Any]]) -> None:
        spec = TABLES[table]
        names = spec.column_names
        # known types skip the driver's DESCRIBE
        with translated():
            self._client.insert(
                table,
                columns,
                column_names=names,
                database=self._database,
                column_type_names=column_types(spec),
                column_oriented=True,
            )

    def _on_retry(self, exc: TransientError) -> None:
        self.counts["retries"] += 1
        log.warning("transient insert failure, retrying: %s", exc)

    def _write_dead(self, table: str, rows: list[Values], reason: str) -> None:
        assert self._dead_letter is not None
        count = self._dead_letter.write(table, reason, rows)
        self.counts["dead_lettered"] += count
        self.dead_by_table[table] += count
        log.error("dead-lettered %d %s rows: %s", count, table, reason)
