"""The Faust app: ``faust -A processors.app worker`` (and ``wcs-analytics worker``).

Settings are read lazily (when Faust configures the app), from the environment
(``WCS_KAFKA``, ``WCS_CLICKHOUSE``, ``WCS_TOPIC_PREFIX`` ...) unless
``create_app`` was given a ``Settings``; importing this module reads nothing.
See docs/worker.md for the design.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import faust

from processors import faust_flush
from processors.faust_agents import register
from processors.faust_alerts import register_alerts
from wcs_analytics.settings import Settings, load


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
        "broker_commit_interval": 1.0,
        "producer_linger_ms": settings.kafka_linger_ms,
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 2.0,
        "web_enabled": False,
        "datadir": str(settings.data_dir / f"faust-{app_id}"),
        "Worker": "processors.faust_worker:Worker",
    }


def follows_wall(settings: Settings) -> bool:
    """Clock mode: ``wall`` (live traffic: event time advances with wall time while a
    partition is quiet) or ``events`` (recorded envelopes: event time only)."""
    return str(getattr(settings, "worker_clock", "wall")) != "events"


def create_app(settings: Settings | None = None, *, follow_wall: bool | None = None) -> faust.App:
    faust_flush.install()  # commit only after the table writes (processors/faust_flush.py)
    app = faust.App("wcs-analytics", autodiscover=False)
    resolved: list[Settings] = []

    def current() -> Settings:
        if not resolved:
            resolved.append(settings if settings is not None else load(os.environ))
        return resolved[0]

    def before(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        options = faust_options(current())
        Path(options["datadir"]).mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():  # "already configured": it is not, this is the hook
            warnings.simplefilter("ignore")
            sender.config_from_object(options)

    def configured(sender: Any, conf: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        s = current()
        conf.id = f"{s.topic_prefix}{s.consumer_group}"

    def after(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        s = current()
        wall = follows_wall(s) if follow_wall is None else follow_wall
        sender.wcs_runtime = register(sender, s, wall)
        # -- FAILED-spike alerting: router + detector agents, AlertWorker (docs/alerts.md#kafka)
        if s.kafka_alerts:  # on by default; --kafka-alerts false turns it off
            register_alerts(sender, sender.wcs_runtime, s, wall)

    hooks: Any = app  # mode's signal typing rejects plain handlers
    hooks.on_before_configured.connect(before, weak=False)
    hooks.on_configured.connect(configured, weak=False)
    hooks.on_after_configured.connect(after, weak=False)
    return app


app = create_app()
