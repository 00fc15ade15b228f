"""The writer's bounded pending buffer, coalesced per entity.

For ``ReplacingMergeTree(version, ...)`` tables only the row with the highest
version per ORDER BY key is kept (equal versions: the later row wins, as in
ClickHouse). Entities re-emit a row on every change, so this is what keeps
insert volume close to the number of entities touched. Tables without a
version column (``events``) keep every row. Pure: no IO, no clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from events.tables import TABLES, Row, Table
from sinks.errors import Backpressure
from sinks.schema import version_column

Values = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Layout:
    columns: frozenset[str]
    key: Callable[[Values], Any]  # ORDER BY values (itemgetter: a tuple, or one value)
    version: str | None  # None: keep every row


class PendingBuffer:
    """Rows per table awaiting a flush; holds references, so rows must not be mutated after add."""

    def __init__(self, tables: Mapping[str, Table] = TABLES, *, coalesce: bool = True) -> None:
        self._layouts = {
            name: _Layout(
                frozenset(t.column_names),
                itemgetter(*t.order_by),
                version_column(t) if coalesce else None,
            )
            for name, t in tables.items()
        }
        self._rows: dict[str, dict[Any, Values]] = {name: {} for name in tables}
        self._serial = itertools.count()  # keys of rows that never coalesce
        self._pending = 0
        self.coalesced = 0  # rows replaced by a newer version of the same key

    def __len__(self) -> int:
        return self._pending

    def add(self, rows: Iterable[Row], limit: int) -> None:
        """Buffer ``rows``, all or nothing.

        Raises ValueError for an unknown table or a row whose columns differ from
        its table's, and Backpressure if the buffer would then hold more than
        ``limit`` rows (rows that only replace a buffered key do not count).
        """
        staged: list[tuple[str, Any, Values]] = []
        new_keys: set[tuple[str, Any]] = set()
        for table, values in rows:  # hot path: no per-row method calls
            layout = self._layouts.get(table)
            if layout is None or values.keys() != layout.columns:
                raise _contract_error(table, values, layout)
            key = layout.key(values) if layout.version else next(self._serial)
            if key not in self._rows[table]:
                new_keys.add((table, key))
            staged.append((table, key, values))
        if self._pending + len(new_keys) > limit:
            raise Backpressure(self._pending, len(new_keys), limit)
        for table, key, values in staged:
            bucket = self._rows[table]
            current = bucket.get(key)
            if current is None:
                bucket[key] = values
                continue
            self.coalesced += 1
            version = cast(str, self._layouts[table].version)  # serial keys never repeat
            if values[version] >= current[version]:
                bucket[key] = values
        self._pending += len(new_keys)

    def tables(self) -> list[str]:
        """Tables with pending rows, in ``events.tables`` order."""
        return [name for name, bucket in self._rows.items() if bucket]

    def rows(self, table: str) -> list[Values]:
        return list(self._rows[table].values())

    def drop(self, table: str) -> None:
        """Forget ``table``'s pending rows (after they were written or dead-lettered)."""
        self._pending -= len(self._rows[table])
        self._rows[table] = {}


def _contract_error(table: str, values: Values, layout: _Layout | None) -> ValueError:
    if layout is None:
        return ValueError(f"unknown table {table!r}")
    missing = sorted(layout.columns - values.keys())
    extra = sorted(values.keys() - layout.columns)
    return ValueError(f"{table}: missing {missing}, unexpected {extra}")
