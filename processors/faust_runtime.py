"""What the Faust agents of one worker share: partition runtimes, topics, tables, the clock.

Agents are thin loops (see ``faust_agents``); this object routes a record to its
partition's ``EntityPartition`` / ``WindowPartition`` (``faust_state``: the same
Pipeline and WindowStore code as embedded mode) and forwards the resulting rows
and window hits. Runtimes are rebuilt lazily from the tables on the first record
of a partition after start or rebalance (Faust resumes agents only once table
recovery is complete).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from events.catalog import FAMILIES
from events.envelope import EnvelopeError, validate
from events.tables import TABLES, Row
from events.topics import family_topic, row_topic
from ingest.redact import redact
from processors.config import ProcessorConfig
from processors.embedded import EventClock
from processors.faust_state import EntityHit, EntityPartition, Output
from processors.faust_windows import WindowPartition, window_key

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
RAW_TOPIC: dict[str, Any] = {**RAW, "key_serializer": "raw", "value_serializer": "raw"}
PROGRESS_EVERY = 1000  # envelopes between progress log lines
CTL_KEY = b"\x00wcs-ctl"  # key of tick/finish control records (never an entity key)


def hits_topic_name(prefix: str) -> str:
    """Internal repartition topic: one status/message hit per record, key = window key."""
    return f"{prefix}window-hits"


class WorkerRuntime:
    def __init__(self, app: Any, settings: Any, follow_wall: bool) -> None:
        self.app, self.settings, self.follow_wall = app, settings, follow_wall
        self.config: ProcessorConfig = settings.processor_config().validate()
        self.redact_keys = frozenset(k.lower() for k in settings.ingest_config().redact_keys)
        prefix = settings.topic_prefix
        self.input_topics = {f: app.topic(family_topic(prefix, f), **RAW_TOPIC) for f in FAMILIES}
        self.hits_topic = app.topic(hits_topic_name(prefix), **RAW_TOPIC)
        self.row_topics = {t: app.topic(row_topic(prefix, t), **RAW_TOPIC) for t in TABLES}
        self.row_names = {t: row_topic(prefix, t) for t in TABLES}
        self.hits_name = hits_topic_name(prefix)
        self.table_of = {row_topic(prefix, t): t for t in TABLES}
        self.family_of = {family_topic(prefix, f): f for f in FAMILIES}
        self.ctl_topics = {t.get_topic_name(): t for t in self.input_topics.values()}
        self.ctl_topics[self.hits_topic.get_topic_name()] = self.hits_topic
        partitions = settings.topic_partitions
        self.entity_table = app.Table("entities", partitions=partitions, **RAW)
        self.window_table = app.Table("windows", partitions=partitions, **RAW)
        self.clock_table = app.Table("clocks", partitions=partitions, **RAW)
        self.entities: dict[Any, EntityPartition] = {}
        self.windows: dict[Any, WindowPartition] = {}
        self.finished: dict[str, set[Any]] = {}
        self.sink_acked: dict[Any, int] = {}
        self.sink: Any = None  # the sink agent's Sink (faust_agents.register)
        self.processed = 0

    # -- partition runtimes ------------------------------------------------------------
    def forget(self) -> None:
        """Rebalance: drop every runtime; each is rebuilt from the tables when needed."""
        self.entities.clear()
        self.windows.clear()

    def _clock(self, tp: Any) -> EventClock:
        clock = EventClock(self.follow_wall)
        raw = self.clock_table.get(_clock_key(tp))
        clock.observe(orjson.loads(raw)[1] if raw is not None else None)
        return clock

    async def entity_runtime(self, tp: Any, offset: int) -> EntityPartition:
        """The partition's runtime; adopting it re-sends the journaled outputs of the
        records from ``offset`` (the first one received) on (crash consistency)."""
        rt = self.entities.get(tp)
        if rt is None:
            topic = (self.family_of[tp.topic], tp.partition)
            table, clock = self.entity_table, self._clock(tp)
            rt, (rows, hits) = EntityPartition.rebuild(self.config, table, topic, clock, offset)
            self.entities[tp] = rt
            log.info(
                "adopted %s[%d] at offset %d: %d open entities, re-sent %d rows and %d hits",
                *(tp.topic, tp.partition, offset, rt.open, len(rows), len(hits)),
            )
            await self._send((rows, hits))
        return rt

    async def window_runtime(self, tp: Any) -> WindowPartition:
        rt = self.windows.get(tp)
        if rt is None:
            table, clock = self.window_table, self._clock(tp)
            rt, rows = WindowPartition.rebuild(self.config, table, tp.partition, clock)
            self.windows[tp] = rt
            log.info("adopted %s[%d]: re-sent %d window rows", tp.topic, tp.partition, len(rows))
            await self._send_rows(rows)
        return rt

    def global_now(self) -> int | None:
        """The worker's clock: the latest of its partitions' clocks."""
        clocks = [rt.clock for rt in self.entities.values()]
        clocks += [rt.clock for rt in self.windows.values()]
        times = [clock.now() for clock in clocks]
        known = [t for t in times if t is not None]
        return max(known) if known else None

    # -- agent bodies --------------------------------------------------------------------
    async def on_input(self, tp: Any, offset: int, value: bytes) -> None:
        """One record of a family topic: an envelope or a control record."""
        rt = await self.entity_runtime(tp, offset)
        committed = self.app.consumer._committed_offset.get(tp)
        if committed is not None:
            rt.prune(committed)
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:  # not from our ingest; where, not what (secrets)
            where = {"topic": tp.topic, "partition": tp.partition, "offset": offset}
            await self.dead_letter("envelope", f"not JSON: {exc}", [{**where, "bytes": len(value)}])
            return
        if isinstance(obj, dict) and "ctl" in obj:
            await self._send_rows(rt.advance(_finish_time(obj), offset))
            self._control_done(tp, obj, rt.clock)
            return
        try:
            envelope = validate(obj)
        except EnvelopeError as exc:
            clean = redact(obj, self.redact_keys)  # it may not come from our ingest
            await self.dead_letter("envelope", f"not an envelope: {exc}", [clean])
            return
        output = rt.process(envelope, offset)
        self.processed += 1
        if self.processed % PROGRESS_EVERY == 0:
            log.info("processed %d envelopes", self.processed)
        await self._produce(self.row_names["events"], envelope["key"].encode(), value)
        await self._send(output)

    async def on_hit(self, tp: Any, value: bytes) -> None:
        """One record of the window-hits topic: a hit or a control record."""
        rt = await self.window_runtime(tp)
        obj = orjson.loads(value)
        if isinstance(obj, dict):
            rows = rt.advance(_finish_time(obj))
            if obj["ctl"] == "finish":
                rows += rt.flush()
            await self._send_rows(rows)
            self._control_done(tp, obj, rt.clock)
            return
        name, received_at, dims, counter, fam, key = obj
        await self._send_rows(rt.hit((name, received_at, tuple(dims), counter, fam, key)))

    def _control_done(self, tp: Any, obj: dict[str, Any], clock: EventClock) -> None:
        now = clock.now()
        if now is not None:
            self.clock_table[_clock_key(tp)] = orjson.dumps([tp.partition, now])
        token = obj.get("token")
        if token in self.finished:
            self.finished[token].add(tp)

    async def _produce(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Queue one record on the app's producer (returns once queued, not acked:
        Faust flushes the producer before every offset commit). The producer itself,
        not ``Topic.send``: that wrapper costs more CPU than our processing."""
        await self.app.producer.send(topic, key, value, None, None, None)

    async def _send_rows(self, rows: list[Row]) -> None:
        for table, row in rows:
            await self._produce(self.row_names[table], None, orjson.dumps(row))

    async def _send(self, output: Output) -> None:
        rows, hits = output
        await self._send_rows(rows)
        await self._send_hits(hits)

    async def _send_hits(self, hits: list[EntityHit]) -> None:
        for hit in hits:
            name, received_at, dims = hit[:3]
            key = window_key(name, received_at - received_at % self.config.window_ms, dims)
            await self._produce(self.hits_name, key, orjson.dumps(hit))

    async def dead_letter(self, table: str, reason: str, rows: list[Any]) -> None:
        from events.topics import dead_letter_topic

        topic = dead_letter_topic(self.settings.topic_prefix)
        for row in rows:
            value = orjson.dumps({"table": table, "reason": reason, "row": row}, default=repr)
            await self.app.producer.send_and_wait(topic, None, value, None, None, None)
        log.error("dead-lettered %d %s row(s): %s", len(rows), table, reason)

    # -- control records -----------------------------------------------------------------
    async def send_control(self, ctl: str, token: str | None = None) -> list[Any]:
        """Send a control record to every input/hits partition assigned to this worker."""
        tps = [tp for tp in self.app.consumer.assignment() if tp.topic in self.ctl_topics]
        value = orjson.dumps({"ctl": ctl, "now": self.global_now(), "token": token})
        for tp in tps:
            topic = self.ctl_topics[tp.topic]
            await topic.send(key=CTL_KEY, value=value, partition=tp.partition)
        return tps


def _finish_time(ctl: dict[str, Any]) -> int | None:
    """A tick advances a partition by its own clock only (partitions are consumed at
    different speeds); a finish record also brings it to the worker's clock."""
    return ctl.get("now") if ctl.get("ctl") == "finish" else None


def _clock_key(tp: Any) -> bytes:
    return f"{tp.topic}#{tp.partition}".encode()
