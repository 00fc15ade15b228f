"""SQL behind the dashboard's ``/api/kpi/...`` endpoints (docs/dashboard.md). Pure strings.

Every query is a template over ``{db}`` (a checked identifier, put in verbatim) and takes
its values only as clickhouse-connect server-side parameters (``Window.params``): the time
range, the bucket size and the app_key/node filters never become SQL text. Counters are
summed from the KPI views; ratios are recomputed from the summed counters, and averages
and p95 are computed from ``calls FINAL`` with the view's formulas (they do not combine
across rows). Concurrency reads the view's own roll-ups (``'*'``), because maxima do not add.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

# a row's time bucket as epoch ms; step is a whole number of minutes (>= 60 s)
_BUCKET = "toUnixTimestamp(toStartOfInterval({col}, toIntervalSecond({{step:UInt32}}))) * 1000"
_FROM = "fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')"
_TO = "fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"
SCOPE: Final = (
    "({app:String} = '' OR app_key = {app:String}) "
    "AND ({node:String} = '' OR node_id = {node:String})"
)


@dataclass(frozen=True, slots=True)
class Window:
    """A time range ``[from_ms, to_ms)``, its bucket size and the app_key/node filters."""

    from_ms: int
    to_ms: int
    step_s: int = 60
    app_key: str = ""  # '' = every app
    node: str = ""  # '' = every node

    def params(self) -> dict[str, Any]:
        return {
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "step": self.step_s,
            "app": self.app_key,
            "node": self.node,
        }


def _where(col: str) -> str:
    return f"{col} >= {_FROM} AND {col} < {_TO} AND {SCOPE}"


def _series(select: str, source: str, col: str = "window_start", extra: str = "") -> str:
    """``SELECT t, <select> FROM <source> WHERE range/scope GROUP BY t ORDER BY t``."""
    bucket = _BUCKET.format(col=col)
    return (
        f"SELECT {bucket} AS t, {select} FROM {source} "
        f"WHERE {_where(col)}{extra} GROUP BY t ORDER BY t"
    )


CALLS: Final = _series(
    "sum(attempts) AS attempts, sum(answered) AS answered, sum(busy) AS busy, "
    "sum(no_answer) AS no_answer, sum(failed) AS failed, sum(in_progress) AS in_progress",
    "{db}.kpi_calls_minute",
)

# kpi_calls_minute's formulas over the filtered calls (averages and p95 do not combine)
_QUALITY = (
    "count() AS attempts, countIf(disposition = 'ANSWERED') / attempts AS asr, "
    "countIf(disposition IN ('ANSWERED', 'BUSY', 'NO_ANSWER')) / attempts AS ner, "
    "avgIfOrNull(talk_ms, disposition = 'ANSWERED') AS acd_ms, "
    "avgOrNull(pdd_ms) AS pdd_avg_ms, quantileExactInclusive(0.95)(pdd_ms) AS pdd_p95_ms, "
    "avgIfOrNull(toUnixTimestamp64Milli(answered_at) - toUnixTimestamp64Milli(created_at), "
    "answered_at IS NOT NULL) AS setup_avg_ms"
)
QUALITY: Final = _series(_QUALITY, "{db}.calls FINAL", col="created_at")
SUMMARY: Final = f"SELECT {_QUALITY} FROM {{db}}.calls FINAL WHERE {_where('created_at')}"

CONCURRENCY: Final = (
    f"SELECT {_BUCKET.format(col='minute')} AS t, "
    "maxIf(concurrent, kind = 'call') AS calls, maxIf(concurrent, kind = 'publish') AS publishers, "
    "maxIf(concurrent, kind = 'viewer') AS viewers FROM {db}.kpi_concurrency_minute "
    f"WHERE minute >= {_FROM} AND minute < {_TO} AND kind IN ('call', 'publish', 'viewer') "
    "AND app_key = if({app:String} = '', '*', {app:String}) "
    "AND node_id = if({node:String} = '', '*', {node:String}) GROUP BY t ORDER BY t"
)

STREAMS: Final = _series(
    "sum(publishers) AS publishers, sum(viewers) AS viewers, "
    "sum(startup_failures) AS startup_failures, sum(publish_minutes) AS publish_minutes, "
    "sum(viewer_minutes) AS viewer_minutes",
    "{db}.kpi_streams_minute",
)

KEEPALIVE: Final = _series(
    "sum(gaps) AS gaps, sum(gap_total_ms) / 1000 AS gap_total_s, max(gap_max_ms) AS gap_max_ms",
    "{db}.kpi_keepalive_gaps_node",
)
KEEPALIVE_STREAMS: Final = (
    "SELECT media_session_id, name, app_key, node_id, gaps, gap_total_ms, gap_max_ms "
    f"FROM {{db}}.kpi_keepalive_gaps_stream WHERE last_gap_end >= {_FROM} "
    f"AND first_gap_start < {_TO} AND {SCOPE} "
    "ORDER BY gap_total_ms DESC, media_session_id LIMIT 8"
)

MESSAGES: Final = _series(
    "sum(sent) AS sent, sum(accepted) AS accepted, sum(failed) AS failed, "
    "sum(imdn_requested) AS imdn_requested, sum(imdn_delivered) AS imdn_delivered, "
    # aliases: the summed counters
    "accepted / nullIf(sent, 0) AS delivery_rate, "
    "imdn_delivered / nullIf(imdn_requested, 0) AS imdn_delivery_rate",
    "{db}.kpi_messages",
)

FAMILIES: Final = ("connection", "call", "stream", "message", "data")
FAILED: Final = _series(
    ", ".join(f"sumIf(count, family = '{f}') AS {f}" for f in FAMILIES),
    "{db}.status_counts FINAL",
    extra=" AND status = 'FAILED'",
)

REASONS: Final = (
    "SELECT source, disposition, info, sip_status, calls FROM ("
    "SELECT 'call' AS source, toString(disposition) AS disposition, info, sip_status, "
    f"sum(calls) AS calls FROM {{db}}.kpi_call_failures WHERE {_where('window_start')} "
    "GROUP BY disposition, info, sip_status UNION ALL "
    "SELECT 'stream' AS source, 'FAILED' AS disposition, info, CAST(NULL, 'Nullable(Int32)') "
    f"AS sip_status, count() AS calls FROM {{db}}.streams FINAL WHERE {_where('created_at')} "
    "AND final_status = 'FAILED' GROUP BY info"
    ") ORDER BY calls DESC, source, disposition, info LIMIT 10"
)

FILTERS: Final = (
    "SELECT arraySort(groupUniqArray(toString(app_key))) AS app_keys, "
    "arraySort(groupUniqArray(toString(node_id))) AS nodes, "
    "toUnixTimestamp(min(window_start)) * 1000 AS first_ms, "
    "toUnixTimestamp(max(window_start)) * 1000 + 60000 AS last_ms "
    "FROM {db}.status_counts"
)


def sql(template: str, database: str) -> str:
    """``template`` with ``{db}`` replaced (``database`` must be a checked identifier)."""
    return template.replace("{db}", database)
