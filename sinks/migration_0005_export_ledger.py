"""Migration 5: the export ledger (``export_runs``, ``export_lines``) for rated exports.

Self-contained so it can be renumbered at a merge: ``sinks/migrations.py`` lists it as
``(NUMBER, NAME, statements(cluster))``. Idempotent like every migration (``IF NOT
EXISTS``); on a cluster each table is a replicated local table behind a Distributed one.
"""

from __future__ import annotations

from typing import Final

from sinks.cluster import create_distributed_sql
from sinks.exports.ledger_tables import LEDGER_TABLES
from sinks.schema import create_table_sql

NUMBER: Final = 5
NAME: Final = "create_export_ledger"


def statements(cluster: str | None) -> list[str]:
    out = []
    for table in LEDGER_TABLES.values():
        out.append(create_table_sql(table, "{db}", cluster))
        if cluster:
            out.append(create_distributed_sql(table, "{db}", cluster))
    return out
