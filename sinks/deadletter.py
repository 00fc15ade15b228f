"""Dead-letter file: rows ClickHouse rejected, one NDJSON object per row.

``{"table": ..., "reason": ..., "row": {column: value}}``, appended, so an
operator can fix and replay them. A value orjson cannot encode is written as
its ``repr`` (the bad value is usually the reason the row is here).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import orjson


class DeadLetter(Protocol):
    def write(self, table: str, reason: str, rows: Iterable[dict[str, Any]]) -> int:
        """Persist rejected rows durably before returning how many; raise rather than drop."""


def _fallback(value: Any) -> str:
    return repr(value)


class DeadLetterFile:
    """Appends rejected rows to ``path`` (parent directories are created).

    ``write`` blocks on file IO; an OSError propagates: a row that cannot be
    dead-lettered must not be dropped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, table: str, reason: str, rows: Iterable[dict[str, Any]]) -> int:
        options = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
        lines = [
            orjson.dumps(
                {"table": table, "reason": reason, "row": row}, default=_fallback, option=options
            )
            for row in rows
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as out:
            out.write(b"".join(lines))
            out.flush()
            os.fsync(out.fileno())
        return len(lines)
