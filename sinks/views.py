"""KPI views (docs/kpi.md): view name -> SELECT, defined once; migration 2 creates them.

Pure string building, no IO. Every SELECT is a template over ``{db}`` (the
migrations placeholder) and reads the entity tables with ``FINAL``, so re-emitted
versions of a row count once. On a cluster the views read the Distributed tables of
the same names (rows are sharded by their ORDER BY key, so ``FINAL`` per shard is
exact) and are created ``ON CLUSTER`` on every node. Views are listed in dependency
order (the peak views read ``kpi_concurrency_minute``).

Attribution (docs/kpi.md): an entity counts in the minute of its ``created_at``;
durations (concurrency, publish/viewer minutes) are spread over the minutes they
overlap, half-open ``[start, end)``; a session still open runs until ``now64(3)``.
"""

from __future__ import annotations

from typing import Final

from sinks.cluster import on_cluster

VIEWERS: Final = "('play', 'hls', 'rtsp')"
# stream lifetime histogram: bucket i holds lifetime_ms in [edge[i], edge[i + 1])
LIFETIME_EDGES_MS: Final = (0, 10_000, 30_000, 60_000, 300_000, 900_000, 1_800_000, 3_600_000)
IMDN_FAILURES: Final = "('IMDN_FAILED', 'IMDN_FORBIDDEN', 'IMDN_ERROR')"
_EDGES = "[" + ", ".join(map(str, LIFETIME_EDGES_MS)) + "]"
_MS = "toUnixTimestamp64Milli"
# ms since epoch of a session's end: open sessions run until now, never before their start
_END = f"greatest({_MS}(coalesce(ended_at, now64(3))), start_ms)"

KPI_CALLS_MINUTE: Final = f"""
SELECT
    toStartOfMinute(created_at) AS window_start,
    app_key,
    node_id,
    count() AS attempts,
    countIf(disposition = 'ANSWERED') AS answered,
    countIf(disposition = 'BUSY') AS busy,
    countIf(disposition = 'FAILED') AS failed,
    countIf(disposition = 'NO_ANSWER') AS no_answer,
    countIf(disposition = 'IN_PROGRESS') AS in_progress,
    answered / attempts AS asr,
    (answered + busy + no_answer) / attempts AS ner,
    avgIfOrNull(talk_ms, disposition = 'ANSWERED') AS acd_ms,
    avgOrNull(pdd_ms) AS pdd_avg_ms,
    quantileExactInclusive(0.95)(pdd_ms) AS pdd_p95_ms,
    avgIfOrNull({_MS}(answered_at) - {_MS}(created_at), answered_at IS NOT NULL) AS setup_avg_ms
FROM {{db}}.calls FINAL
GROUP BY window_start, app_key, node_id
"""

KPI_CALL_FAILURES: Final = """
SELECT
    toStartOfMinute(created_at) AS window_start,
    app_key,
    node_id,
    disposition,
    info,
    sip_status,
    count() AS calls
FROM {db}.calls FINAL
WHERE disposition IN ('FAILED', 'BUSY', 'NO_ANSWER')
GROUP BY window_start, app_key, node_id, disposition, info, sip_status
"""

# +1/-1 sweep: one change per distinct instant, level = running sum, each level held over
# [t, next_t) and spread over the minutes it touches; the max level per minute wins.
KPI_CONCURRENCY_MINUTE: Final = f"""
WITH
sessions AS (
    SELECT toString(app_key) AS app, toString(node_id) AS node, 'call' AS session_kind,
           {_MS}(created_at) AS start_ms, {_END} AS end_ms
    FROM {{db}}.calls FINAL
    UNION ALL
    SELECT toString(app_key) AS app, toString(node_id) AS node,
           arrayJoin(multiIf(kind IN {VIEWERS}, [toString(kind), 'viewer'],
                             kind = '', ['unknown'], [toString(kind)])) AS session_kind,
           {_MS}(assumeNotNull(started_at)) AS start_ms, {_END} AS end_ms
    FROM {{db}}.streams FINAL
    WHERE started_at IS NOT NULL
),
changes AS (
    SELECT scope.1 AS app_key, scope.2 AS node_id, session_kind AS kind, change.1 AS t,
           sum(change.2) AS delta
    FROM sessions
    ARRAY JOIN [(app, node), (app, '*'), ('*', node), ('*', '*')] AS scope
    ARRAY JOIN [(start_ms, 1), (end_ms, -1)] AS change
    GROUP BY app_key, node_id, kind, t
),
levels AS (
    SELECT app_key, node_id, kind, t,
           sum(delta) OVER (PARTITION BY app_key, node_id, kind ORDER BY t
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS level,
           leadInFrame(toNullable(t)) OVER (PARTITION BY app_key, node_id, kind ORDER BY t
                            ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_t
    FROM changes
)
SELECT
    toDateTime(m * 60, 'UTC') AS minute,
    app_key,
    node_id,
    kind,
    max(level) AS concurrent
FROM levels
ARRAY JOIN range(intDiv(t, 60000), intDiv(ifNull(next_t, t + 1) - 1, 60000) + 1) AS m
GROUP BY minute, app_key, node_id, kind
"""


def _peak(unit: str) -> str:
    """Peak of ``kpi_concurrency_minute`` per hour/day; ``peak_minute``: first minute at peak."""
    return f"""
SELECT
    toStartOf{unit}(minute) AS window_start,
    app_key,
    node_id,
    kind,
    max(concurrent) AS peak,
    argMax(minute, (concurrent, -toInt64(toUInt32(minute)))) AS peak_minute
FROM {{db}}.kpi_concurrency_minute
GROUP BY window_start, app_key, node_id, kind
"""


KPI_STREAMS_MINUTE: Final = f"""
SELECT
    window_start,
    app_key,
    node_id,
    sum(publisher) AS publishers,
    sum(viewer) AS viewers,
    sum(startup_failure) AS startup_failures,
    sum(publish_ms) / 60000 AS publish_minutes,
    sum(viewer_ms) / 60000 AS viewer_minutes
FROM (
    SELECT toStartOfMinute(created_at) AS window_start, app_key, node_id,
           toUInt64(kind = 'publish') AS publisher,
           toUInt64(kind IN {VIEWERS}) AS viewer,
           -- FAILED before PUBLISHING/PLAYING (started_at NULL: never started)
           toUInt64(final_status = 'FAILED' AND ifNull(started_at > ended_at, true))
               AS startup_failure,
           toInt64(0) AS publish_ms, toInt64(0) AS viewer_ms
    FROM {{db}}.streams FINAL
    UNION ALL
    SELECT toDateTime(m * 60, 'UTC') AS window_start, app_key, node_id,
           toUInt64(0) AS publisher, toUInt64(0) AS viewer, toUInt64(0) AS startup_failure,
           if(kind = 'publish', overlap_ms, 0) AS publish_ms,
           if(kind IN {VIEWERS}, overlap_ms, 0) AS viewer_ms
    FROM (
        SELECT app_key, node_id, kind, start_ms, end_ms,
               arrayJoin(range(intDiv(start_ms, 60000), intDiv(end_ms - 1, 60000) + 1)) AS m,
               -- the part of [start_ms, end_ms) inside minute m
               least(end_ms, (m + 1) * 60000) - greatest(start_ms, m * 60000) AS overlap_ms
        FROM (
            SELECT app_key, node_id, kind,
                   {_MS}(assumeNotNull(started_at)) AS start_ms, {_END} AS end_ms
            FROM {{db}}.streams FINAL
            WHERE started_at IS NOT NULL
        )
        WHERE end_ms > start_ms
    )
)
GROUP BY window_start, app_key, node_id
"""

KPI_STREAM_LIFETIMES: Final = f"""
SELECT
    toStartOfHour(assumeNotNull(started_at)) AS window_start,
    app_key,
    node_id,
    kind,
    arrayCount(edge -> edge <= assumeNotNull(lifetime_ms), {_EDGES}) AS bucket,
    {_EDGES}[bucket] AS bucket_lo_ms,
    if(bucket < length({_EDGES}), {_EDGES}[bucket + 1], NULL) AS bucket_hi_ms,
    count() AS streams
FROM {{db}}.streams FINAL
WHERE lifetime_ms IS NOT NULL AND started_at IS NOT NULL
GROUP BY window_start, app_key, node_id, kind, bucket
"""

KPI_KEEPALIVE_GAPS_STREAM: Final = """
SELECT
    media_session_id,
    argMax(g.app_key, g.gap_start) AS app_key,
    argMax(g.node_id, g.gap_start) AS node_id,
    argMax(g.name, g.gap_start) AS name,
    count() AS gaps,
    sum(gap_ms) AS gap_total_ms,
    max(gap_ms) AS gap_max_ms,
    min(gap_start) AS first_gap_start,
    max(gap_end) AS last_gap_end
FROM {db}.keepalive_gaps AS g FINAL
GROUP BY media_session_id
"""

KPI_KEEPALIVE_GAPS_NODE: Final = """
SELECT
    toStartOfMinute(gap_start) AS window_start,
    app_key,
    node_id,
    count() AS gaps,
    uniqExact(media_session_id) AS streams,
    sum(gap_ms) AS gap_total_ms,
    max(gap_ms) AS gap_max_ms,
    avg(gap_ms) AS gap_avg_ms
FROM {db}.keepalive_gaps FINAL
GROUP BY window_start, app_key, node_id
"""

KPI_MESSAGES: Final = f"""
SELECT
    toStartOfMinute(created_at) AS window_start,
    app_key,
    node_id,
    countIf(sent_at IS NOT NULL) AS sent,
    countIf(sent_at IS NOT NULL AND accepted_at IS NOT NULL) AS accepted,
    accepted / nullIf(sent, 0) AS delivery_rate,
    countIf(sent_at IS NOT NULL AND (imdn_required OR delivered_at IS NOT NULL
                                     OR final_status IN {IMDN_FAILURES})) AS imdn_requested,
    countIf(sent_at IS NOT NULL AND delivered_at IS NOT NULL) AS imdn_delivered,
    imdn_delivered / nullIf(imdn_requested, 0) AS imdn_delivery_rate,
    countIf(sent_at IS NOT NULL AND final_status IN {IMDN_FAILURES}) AS imdn_failed,
    countIf(sent_at IS NOT NULL AND failed_at IS NOT NULL) AS failed,
    failed / nullIf(sent, 0) AS failure_rate,
    countIf(received_at IS NOT NULL) AS received
FROM {{db}}.messages FINAL
GROUP BY window_start, app_key, node_id
"""

VIEWS: Final[dict[str, str]] = {
    "kpi_calls_minute": KPI_CALLS_MINUTE,
    "kpi_call_failures": KPI_CALL_FAILURES,
    "kpi_concurrency_minute": KPI_CONCURRENCY_MINUTE,
    "kpi_concurrency_peak_hour": _peak("Hour"),
    "kpi_concurrency_peak_day": _peak("Day"),
    "kpi_streams_minute": KPI_STREAMS_MINUTE,
    "kpi_stream_lifetimes": KPI_STREAM_LIFETIMES,
    "kpi_keepalive_gaps_stream": KPI_KEEPALIVE_GAPS_STREAM,
    "kpi_keepalive_gaps_node": KPI_KEEPALIVE_GAPS_NODE,
    "kpi_messages": KPI_MESSAGES,
}


def create_view_sql(name: str, database: str, cluster: str | None = None) -> str:
    """``CREATE VIEW IF NOT EXISTS db.name [ON CLUSTER c] AS SELECT ...`` of ``VIEWS[name]``.

    KeyError for an unknown view. ``database`` is put in verbatim (checked by ``migrate``,
    or the ``{db}`` placeholder). To change a view later, append a migration with
    ``CREATE OR REPLACE VIEW`` built from the new SELECT (IF NOT EXISTS keeps the old one).
    """
    select = VIEWS[name].strip().replace("{db}", database)
    return f"CREATE VIEW IF NOT EXISTS {database}.{name}{on_cluster(cluster)} AS\n{select}"


def create_views(cluster: str | None) -> list[str]:
    """Migration 2: every KPI view, in dependency order, as ``{db}`` templates."""
    return [create_view_sql(name, "{db}", cluster) for name in VIEWS]
