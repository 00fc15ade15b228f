"""Output tables: the contract between processors and sinks, defined once.

Processors emit rows as ``(table_name, {column: value})`` with times as int
epoch milliseconds (UTC). sinks builds both the DDL and the insert column list
from these definitions. Session and window tables are
``ReplacingMergeTree(version)``: a row is re-emitted with a higher ``version``
whenever its entity changes, and readers use ``FINAL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

Row = tuple[str, dict[str, Any]]

TIME: Final = "DateTime64(3, 'UTC')"
OPT_TIME: Final = "Nullable(DateTime64(3, 'UTC'))"
LC: Final = "LowCardinality(String)"


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    order_by: tuple[str, ...]
    engine: str = "ReplacingMergeTree(version)"
    partition_by: str | None = None
    ttl: str | None = None
    internal: bool = False  # the processors' own bookkeeping, not a table for readers

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def time_columns(self) -> frozenset[str]:
        return frozenset(name for name, kind in self.columns if "DateTime64" in kind)


_SCOPE = (("node_id", LC), ("app_key", LC))

EVENTS = Table(
    "events",
    (
        ("id", "String"),
        ("received_at", TIME),
        ("method", LC),
        ("family", LC),
        ("key", "String"),
        *_SCOPE,
        ("session_id", "String"),
        ("body", "String"),
    ),
    order_by=("family", "received_at", "id"),
    engine="ReplacingMergeTree",
    partition_by="toYYYYMM(received_at)",
)

CALLS = Table(
    "calls",
    (
        ("call_id", "String"),
        ("incarnation", "UInt64"),
        *_SCOPE,
        ("session_id", "String"),
        ("caller", "String"),
        ("callee", "String"),
        ("incoming", "Bool"),
        ("has_video", "Bool"),
        ("media_provider", LC),
        ("created_at", TIME),
        ("ringing_at", OPT_TIME),
        ("answered_at", OPT_TIME),
        ("ended_at", OPT_TIME),
        ("last_event_at", TIME),
        ("status", LC),
        ("disposition", LC),
        ("pdd_ms", "Nullable(Int64)"),
        ("duration_ms", "Nullable(Int64)"),
        ("talk_ms", "Nullable(Int64)"),
        ("hold_ms", "Int64"),
        ("sip_status", "Nullable(Int32)"),
        ("info", "String"),
        ("closed_by", LC),
        ("custom", "String"),
        ("version", "UInt64"),
    ),
    order_by=("call_id", "incarnation"),
)

STREAMS = Table(
    "streams",
    (
        ("media_session_id", "String"),
        ("incarnation", "UInt64"),
        *_SCOPE,
        ("session_id", "String"),
        ("name", "String"),
        ("kind", LC),
        ("published", "Bool"),
        ("media_provider", LC),
        ("record", "Bool"),
        ("has_audio", "Bool"),
        ("has_video", "Bool"),
        ("created_at", TIME),
        ("started_at", OPT_TIME),
        ("ended_at", OPT_TIME),
        ("last_event_at", TIME),
        ("lifetime_ms", "Nullable(Int64)"),
        ("status", LC),
        ("final_status", LC),
        ("info", "String"),
        ("keepalive_count", "UInt32"),
        ("keepalive_max_gap_ms", "Int64"),
        ("closed_by", LC),
        ("custom", "String"),
        ("version", "UInt64"),
    ),
    order_by=("media_session_id", "incarnation"),
)

KEEPALIVE_GAPS = Table(
    "keepalive_gaps",
    (
        ("media_session_id", "String"),
        *_SCOPE,
        ("name", "String"),
        ("gap_start", TIME),
        ("gap_end", TIME),
        ("gap_ms", "Int64"),
        ("is_deleted", "UInt8"),
        ("version", "UInt64"),
    ),
    order_by=("media_session_id", "gap_start"),
    # a late keep-alive can split an emitted gap: the old row is re-emitted deleted
    engine="ReplacingMergeTree(version, is_deleted)",
)

MESSAGES = Table(
    "messages",
    (
        ("message_id", "String"),
        *_SCOPE,
        ("session_id", "String"),
        ("direction", LC),
        ("sender", "String"),
        ("recipient", "String"),
        ("content_type", LC),
        ("imdn_required", "Bool"),
        ("created_at", TIME),
        ("sent_at", OPT_TIME),
        ("received_at", OPT_TIME),
        ("accepted_at", OPT_TIME),
        ("delivered_at", OPT_TIME),
        ("failed_at", OPT_TIME),
        ("last_event_at", TIME),
        ("final_status", LC),
        ("info", "String"),
        ("version", "UInt64"),
    ),
    order_by=("message_id",),
)

MESSAGE_RATES = Table(
    "message_rates",
    (
        ("window_start", TIME),
        *_SCOPE,
        ("sent", "UInt64"),
        ("received", "UInt64"),
        ("accepted", "UInt64"),
        ("failed", "UInt64"),
        ("imdn_delivered", "UInt64"),
        ("imdn_failed", "UInt64"),
        ("version", "UInt64"),
    ),
    order_by=("window_start", "app_key", "node_id"),
)

CONNECTIONS = Table(
    "connections",
    (
        ("node_id", LC),
        ("session_id", "String"),
        ("incarnation", "UInt64"),
        ("app_key", LC),
        ("sip_login", "String"),
        ("client_version", "String"),
        ("client_os_version", "String"),
        ("client_browser_version", "String"),
        ("created_at", TIME),
        ("connected_at", OPT_TIME),
        ("established_at", OPT_TIME),
        ("ended_at", OPT_TIME),
        ("last_event_at", TIME),
        ("duration_ms", "Nullable(Int64)"),
        ("status", LC),
        ("final_status", LC),
        ("info", "String"),
        ("registration_status", LC),
        ("closed_by", LC),
        ("custom", "String"),
        ("version", "UInt64"),
    ),
    order_by=("node_id", "session_id", "incarnation"),
)

STATUS_COUNTS = Table(
    "status_counts",
    (
        ("window_start", TIME),
        ("family", LC),
        ("status", LC),
        *_SCOPE,
        ("count", "UInt64"),
        ("version", "UInt64"),
    ),
    order_by=("window_start", "family", "status", "app_key", "node_id"),
)

# FAILED-spike alerts (processors/alerts.py, docs/alerts.md): version 1 firing, 2 resolved
ALERTS = Table(
    "alerts",
    (
        ("alert_id", "String"),
        ("rule", LC),
        ("family", LC),
        ("app_key", LC),
        ("node_id", LC),
        ("state", LC),
        ("fired_at", TIME),
        ("resolved_at", OPT_TIME),
        ("window_start", TIME),
        ("failures", "UInt64"),
        ("attempts", "UInt64"),
        ("ratio", "Float64"),
        ("baseline", "Float64"),
        ("version", "UInt64"),
    ),
    order_by=("alert_id",),
)


def parts_of(table: Table) -> Table:
    """Per-partition partial counts of a window table (Kafka workers: each input partition
    counts its own hits; the totals in ``table`` are their sums, sinks.window_totals)."""
    columns = tuple(c for c in table.columns if c[0] != "version")
    return Table(
        f"{table.name}_parts",
        (*columns, ("part", LC), ("version", "UInt64")),
        order_by=(*table.order_by, "part"),
        internal=True,
    )


STATUS_COUNTS_PARTS = parts_of(STATUS_COUNTS)
MESSAGE_RATES_PARTS = parts_of(MESSAGE_RATES)

# Entity states of the runtime (processors/runtime.py, sinks/state_store.py): one row per
# entity and one per partition (family '', key = partition id: clock, windows, alert state).
# Not a table for readers. Closed entities stay ``late_event_retention`` for late events.
STATE = Table(
    "entity_state",
    (
        ("family", LC),
        ("key", "String"),
        ("part", LC),
        ("open", "UInt8"),
        ("last_event_at", TIME),
        ("written_at", TIME),
        ("state", "String"),
        ("version", "UInt64"),
    ),
    order_by=("family", "key"),
    ttl="toDateTime(written_at) + INTERVAL 8 DAY DELETE WHERE family != ''",
    internal=True,
)

TABLES: Final[dict[str, Table]] = {
    t.name: t
    for t in (
        EVENTS,
        CALLS,
        STREAMS,
        KEEPALIVE_GAPS,
        MESSAGES,
        MESSAGE_RATES,
        CONNECTIONS,
        STATUS_COUNTS,
        ALERTS,
        STATE,
        STATUS_COUNTS_PARTS,
        MESSAGE_RATES_PARTS,
    )
}


OUTPUT_TABLES: Final[dict[str, Table]] = {n: t for n, t in TABLES.items() if not t.internal}


def check_row(row: Row) -> None:
    """Raise ValueError if a row does not carry exactly its table's columns (tests use this)."""
    table, values = row
    expected = set(TABLES[table].column_names)
    if set(values) != expected:
        missing = sorted(expected - set(values))
        extra = sorted(set(values) - expected)
        raise ValueError(f"{table}: missing {missing}, unexpected {extra}")
