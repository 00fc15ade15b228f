"""``wcs-analytics worker --kafka HOST:PORT --clickhouse DSN``: the Kafka worker (Faust).

``run_worker(settings)`` is what the CLI calls. ``faust -A wcs_analytics.worker worker``
works too: the module attribute ``app`` is built on first access from the ``WCS_*``
environment (importing the module reads nothing). ``--worker-clock events`` is for
replayed recordings (event time from the envelopes only, no wall advance). Design:
docs/worker.md.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Final

import faust

from events.topics import alerts_topic, dead_letter_topic, input_topics
from processors.alert_rules import load_rules
from processors.faust_app import create_app
from wcs_analytics.alert_leader import AlertLeader
from wcs_analytics.alert_webhooks import WebhookSender
from wcs_analytics.partitions import PartitionEngine
from wcs_analytics.settings import Settings, load
from wcs_analytics.topics import ensure_topics

log = logging.getLogger(__name__)


# Bytes a fetch may bring per partition (Faust's default: 1 MiB). Batch records are 10-500 KiB,
# so 1 MiB is a few dozen records a partition per round trip and a backlog drains in stalls;
# 8 MiB measured 1.24x the envelopes/s on a 100k-envelope backlog (bench/README.md,
# 2026-12-06). Memory stays bounded by aiokafka's per-response limit (fetch_max_bytes, 50 MiB).
FETCH_BYTES: Final = 8 << 20


def faust_options(settings: Settings) -> dict[str, Any]:
    if not settings.kafka:
        raise SystemExit("wcs-analytics worker: --kafka / WCS_KAFKA is required")
    app_id = f"{settings.topic_prefix}{settings.consumer_group}"
    return {
        "broker": [f"kafka://{host.strip()}" for host in settings.kafka.split(",")],
        "store": "memory://",
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "consumer_auto_offset_reset": "earliest",
        "consumer_max_fetch_size": FETCH_BYTES,
        "broker_commit_interval": 1.0,
        "producer_linger_ms": settings.kafka_linger_ms,
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 2.0,
        "stream_wait_empty": False,  # shutdown is bounded; unacked records are re-read
        "web_enabled": False,
        "datadir": str(settings.data_dir / f"faust-{app_id}"),
        "Worker": "wcs_analytics.worker:Worker",
    }


def follows_wall(settings: Settings) -> bool:
    """Clock mode: ``wall`` (live traffic: event time advances with wall time while a
    partition is quiet) or ``events`` (recorded envelopes: event time only)."""
    return settings.worker_clock != "events"


def build_app(settings: Settings, follow_wall: bool | None = None) -> faust.App:
    wall = follows_wall(settings) if follow_wall is None else follow_wall
    prefix = settings.topic_prefix
    options = faust_options(settings)
    Path(options["datadir"]).mkdir(parents=True, exist_ok=True)
    webhook = None
    if settings.kafka_alerts and settings.alert_webhook_url:
        webhook = WebhookSender(settings.alert_webhook_url, settings.alert_webhook_format)

    def leader() -> AlertLeader:
        return AlertLeader(
            settings.dsn, settings.database, load_rules(settings.alert_rules), prefix
        )

    app = create_app(
        f"{prefix}{settings.consumer_group}",
        options,
        input_topics(prefix),
        dead_letter_topic(prefix),
        lambda: PartitionEngine(settings, wall),
        leader if settings.kafka_alerts else None,
        alerts_topic(prefix) if settings.kafka_alerts else None,
        webhook.send if webhook is not None else None,
        take_within_s=settings.batch_interval_ms / 1000,
        follow_wall=wall,
        take_records=settings.worker_take_records,
        on_shutdown=webhook.close if webhook is not None else None,
    )
    app.wcs_settings = settings  # type: ignore[attr-defined]
    return app


class Worker(faust.Worker):
    """``faust.Worker`` that creates the topics before the group join."""

    async def on_first_start(self) -> None:
        settings: Settings | None = getattr(self.app, "wcs_settings", None)
        if settings is not None and settings.kafka:
            prefix = settings.topic_prefix
            topics = [*input_topics(prefix), dead_letter_topic(prefix), alerts_topic(prefix)]
            await ensure_topics(
                settings.kafka,
                topics,
                partitions=settings.topic_partitions,
                replication=settings.topic_replication,
                create=settings.create_topics,
            )
        await super().on_first_start()


def run_worker(settings: Settings, *, follow_wall: bool | None = None) -> int:
    """Run one worker until SIGTERM/SIGINT (flush, then commit, bounded); exit code."""
    if not settings.kafka:
        print("wcs-analytics worker: --kafka / WCS_KAFKA is required", file=sys.stderr)
        return 2
    app = build_app(settings, follow_wall)
    app.finalize()
    worker = app.Worker(loglevel=settings.log_level.upper(), quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


def __getattr__(name: str) -> Any:
    """``app`` for ``faust -A wcs_analytics.worker``: built on first access from ``WCS_*``."""
    if name != "app":
        raise AttributeError(name)
    app = build_app(load(os.environ))
    globals()["app"] = app
    return app
