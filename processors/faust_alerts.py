"""FAILED-spike alerting on the Kafka path: thin Faust loops around ``AlertPartition``.

```
wcs.rows.status_counts ─► router ─► wcs.alert-rows ─► detector ─► wcs.rows.alerts (sink)
 (also read by the sink)  agent    one key: one      agent       wcs.alerts, webhook
                                   partition         table "alerts"
```

* The row topics are keyed by nothing (spread over partitions, possibly over workers),
  so a router agent (a second reader of ``rows.status_counts`` in the same consumer:
  Faust acks a record only once every agent acked it, the sink is unaffected)
  forwards each row to ``<prefix>alert-rows`` under ONE key: one detector sees every
  series, as in embedded mode (same warm-up origin, same verdicts).
  ``status_counts`` is small (one row per minute x family x status x app x node).
* The detector agent keeps its state in the changelog-backed table ``alerts``
  (``faust_alert_state``), evaluates on its clock, produces the alert rows to
  ``<prefix>rows.alerts`` and ``<prefix>alerts`` and queues webhooks.
* ``AlertWorker`` (the app's Worker) creates the two topics on start and, at
  SIGTERM/SIGINT, after the worker's own end-of-input flush, evaluates at the
  worker's clock and waits until the sink inserted the alert rows.
"""

from __future__ import annotations

import logging
import signal
import uuid
from typing import Any

import faust
import orjson
from aiokafka.partitioner import DefaultPartitioner

from events.tables import Row
from events.topics import alerts_topic, row_topic
from processors.alert_rules import load_rules
from processors.embedded import EventClock
from processors.faust_alert_state import ALERT_KEY, AlertPartition
from processors.faust_runtime import RAW, RAW_TOPIC, WorkerRuntime
from processors.faust_worker import FINISH_TIMEOUT_S, Worker, _until, drained, finish, runtime_of
from wcs_analytics.alert_webhooks import WebhookSender
from wcs_analytics.topics import ensure_topics

log = logging.getLogger(__name__)

TICK_S = 5.0  # wall mode: a tick record lets the clock advance during quiet periods
# How far the detector's clock stays behind the rows' frontier (faust_alert_state): live
# (wall) window partitions advance together, so a few seconds cover the row topic's lag;
# a replay (events) holds windows for the window stage's retention (late hits are dropped
# after it) and judges the rest at the end-of-input flush, at the worker's clock.
SETTLE_WALL_MS = 10_000


def alert_rows_topic_name(prefix: str) -> str:
    """The detector's input: status_counts rows and control records, key ``ALERT_KEY``."""
    return f"{prefix}alert-rows"


class AlertRuntime:
    def __init__(self, app: Any, rt: WorkerRuntime, settings: Any, follow_wall: bool) -> None:
        self.app, self.rt, self.settings, self.follow_wall = app, rt, settings, follow_wall
        self.rules = load_rules(settings.alert_rules)
        prefix, cfg = settings.topic_prefix, rt.config
        self.lateness_ms = cfg.window_lateness_ms
        self.settle_ms = SETTLE_WALL_MS if follow_wall else cfg.window_retention_ms
        self.source = app.topic(row_topic(prefix, "status_counts"), **RAW_TOPIC)
        self.topic = app.topic(alert_rows_topic_name(prefix), **RAW_TOPIC)
        self.names = [alert_rows_topic_name(prefix), alerts_topic(prefix)]
        self.out = [row_topic(prefix, "alerts"), alerts_topic(prefix)]
        self.table = app.Table("alerts", partitions=settings.topic_partitions, **RAW)
        parts = list(range(settings.topic_partitions))
        self.partition: int = DefaultPartitioner()(ALERT_KEY, parts, parts)
        self.detector: AlertPartition | None = None
        self.routed: dict[Any, int] = {}  # status_counts partition -> last offset forwarded
        self.finished: set[str] = set()
        self.webhook = None
        if settings.alert_webhook_url:
            webhook = WebhookSender(settings.alert_webhook_url, settings.alert_webhook_format)
            self.webhook = webhook

    async def route(self, tp: Any, offset: int, value: bytes) -> None:
        await self.app.producer.send(
            self.topic.get_topic_name(), ALERT_KEY, value, None, None, None
        )
        self.routed[tp] = max(self.routed.get(tp, -1), offset)

    async def on_record(self, tp: Any, offset: int, value: bytes) -> None:
        """One detector record: a status_counts row or a control record."""
        part = self.detector
        if part is None:
            clock = EventClock(self.follow_wall)
            args = (self.rules, self.lateness_ms, self.settle_ms, clock, offset)
            part, resend = AlertPartition.load(self.table, *args)
            self.detector = part
            log.info("adopted the alert detector; re-sent %d alert rows", len(resend))
            await self._emit(resend, notify=False)
        committed = self.app.consumer._committed_offset.get(tp)
        if committed is not None:
            part.prune(committed)
        obj = orjson.loads(value)
        if isinstance(obj, dict) and "ctl" in obj:
            rows = part.advance(obj.get("now") if obj["ctl"] == "finish" else None, offset)
            self.finished.add(obj.get("token") or "")
        else:
            rows = part.add(obj, offset)
        await self._emit(rows, notify=True)

    async def _emit(self, rows: list[Row], notify: bool) -> None:
        for _, row in rows:
            value, key = orjson.dumps(row), row["alert_id"].encode()
            for topic in self.out:
                await self.app.producer.send(topic, key, value, None, None, None)
        if rows:
            log.info("alert rows: %s", [(r["rule"], r["app_key"], r["state"]) for _, r in rows])
        if rows and notify and self.webhook is not None:
            self.webhook.send([row for _, row in rows])

    def holds_detector(self) -> bool:
        tps = self.app.consumer.assignment()
        return any(tp.topic == self.topic.get_topic_name() and tp.partition == self.partition
                   for tp in tps)  # fmt: skip

    async def control(self, ctl: str, now: int | None = None) -> str:
        token = uuid.uuid4().hex
        value = orjson.dumps({"ctl": ctl, "now": now, "token": token})
        await self.app.producer.send(
            self.topic.get_topic_name(), ALERT_KEY, value, None, None, None
        )
        return token

    async def finish(self, timeout_s: float = FINISH_TIMEOUT_S) -> None:
        """After the worker's ``finish``: every routed row in, evaluate at the worker's
        clock, alert rows inserted by the sink (each wait bounded)."""
        app, source = self.app, self.source.get_topic_name()
        tps = [tp for tp in app.consumer.assignment() if tp.topic == source]
        await drained(app, tps, self.routed, timeout_s, "the alert router")
        if self.holds_detector():
            token = await self.control("finish", self.rt.global_now())
            await _until(lambda: token in self.finished, timeout_s, "the alert detector")
            await app.producer.flush()
            row_tps = [tp for tp in app.consumer.assignment() if tp.topic in self.rt.table_of]
            await drained(app, row_tps, self.rt.sink_acked, timeout_s, "the sink (alert rows)")
        if self.webhook is not None:
            self.webhook.close()


def register_alerts(app: Any, rt: WorkerRuntime, settings: Any, follow_wall: bool) -> AlertRuntime:
    """The router and detector agents (and the wall-mode tick timer) on ``app``; makes
    ``AlertWorker`` the app's Worker class (called from the configuration hook)."""
    art = AlertRuntime(app, rt, settings, follow_wall)

    async def router(stream: Any) -> None:
        async for event in stream.events():
            await art.route(event.message.tp, event.message.offset, event.value)

    async def detector(stream: Any) -> None:
        async for event in stream.events():
            await art.on_record(event.message.tp, event.message.offset, event.value)

    app.agent(art.source, name="wcs-alert-router")(router)
    app.agent(art.topic, name="wcs-alert-detector")(detector)
    if follow_wall:

        async def tick() -> None:
            if art.holds_detector():
                await art.control("tick")

        app.timer(TICK_S, name="wcs-alert-tick")(tick)
    app.wcs_alerts = art
    app.conf.Worker = AlertWorker
    return art


class AlertWorker(Worker):
    """``faust_worker.Worker`` plus the alert topics on start and the alert flush at stop."""

    async def on_first_start(self) -> None:
        art = getattr(self.app, "wcs_alerts", None)
        if isinstance(art, AlertRuntime):
            s = art.settings
            size = {"partitions": s.topic_partitions, "replication": s.topic_replication}
            await ensure_topics(s.kafka, art.names, create=s.create_topics, **size)
            await art.table.changelog_topic.maybe_declare()  # as in Worker.on_first_start
        await super().on_first_start()

    async def _stop_on_signal(self, sig: signal.Signals) -> None:
        rt, art = runtime_of(self.app), getattr(self.app, "wcs_alerts", None)
        try:
            if rt is not None:
                await finish(rt)
            if isinstance(art, AlertRuntime):
                await art.finish()
        except Exception:
            log.exception("shutdown flush failed; unflushed work is redone by the next worker")
        await faust.Worker._stop_on_signal(self, sig)
