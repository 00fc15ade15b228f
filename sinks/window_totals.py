"""Window totals from per-partition partial counts (the Kafka path).

Each input partition of a Kafka worker counts the status hits of its own entities
(``status_counts_parts``, ``message_rates_parts``: full partial counts per ``part``, version =
their sum). After inserting partials, the worker rewrites the totals of the windows it
touched as one ``INSERT ... SELECT`` summing every partition's latest partial. Two workers
doing this for the same window at once still end right: each runs its SELECT after its
own partial is in, so at least one of them sees both, and its total carries the higher
version (version = the sum of the counters, and counts only grow).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from events.tables import MESSAGE_RATES, STATUS_COUNTS, Table
from processors.windows import COUNTERS, DIMS
from sinks.errors import translated

WINDOW_TABLES: dict[str, Table] = {"status_counts": STATUS_COUNTS, "message_rates": MESSAGE_RATES}


def totals_sql(database: str, table: str) -> str:
    """``INSERT INTO table SELECT`` the sums over ``{table}_parts`` for ``{starts}``."""
    counters = COUNTERS[table]
    version = " + ".join(f"sum(p.{c})" for c in counters)
    names = WINDOW_TABLES[table].column_names
    select = [
        f"{version} AS version"
        if name == "version"
        else (f"sum(p.{name}) AS {name}" if name in counters else f"p.{name}")
        for name in names
    ]
    group = ", ".join(f"p.{d}" for d in ("window_start", *DIMS[table]))
    return (
        f"INSERT INTO {database}.{table} ({', '.join(names)}) "
        f"SELECT {', '.join(select)} FROM {database}.{table}_parts AS p FINAL "
        "WHERE toUnixTimestamp64Milli(p.window_start) IN {starts:Array(Int64)} "
        f"GROUP BY {group}"
    )


def refresh(client: Any, database: str, touched: Mapping[str, Iterable[int]]) -> None:
    """Rewrite the totals of the windows in ``touched`` (table -> window starts, epoch ms)."""
    for table, starts in touched.items():
        values = sorted(set(starts))
        if not values:
            continue
        with translated(f"summing {table} partials"):
            client.command(
                totals_sql(database, table),
                parameters={"starts": values},
            )
