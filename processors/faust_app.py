"""The Faust app of ``wcs-analytics worker``: a loop over batched input records, no business logic.

One agent reads every family topic with ``noack_take``: each record goes to the
engine (one partition runtime per input partition, docs/worker.md); when the engine's
flush is due, the previous flush is awaited, its records are acked (Faust commits acked
offsets: flush, then commit), and the next flush is handed to the insert thread. A timer
advances quiet partitions by wall time; the leader's timer evaluates FAILED-spike alerts
over every partition's windows. No Faust table, no patched Faust internals: the state
lives in ClickHouse with the offset it has applied (the engine's crash story).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import faust

log = logging.getLogger(__name__)

TICK_S = 1.0


class Engine(Protocol):
    """``wcs_analytics.partitions.PartitionEngine`` as the adapter sees it."""

    parts: dict[str, Any]
    dead: list[tuple[str, bytes]]

    def assign(self, names: list[str]) -> list[Any]: ...
    def add(self, part: Any) -> None: ...
    def revoke(self, names: list[str]) -> None: ...
    def feed(self, name: str, offset: int, value: bytes) -> None: ...
    def tick(self) -> None: ...
    def progress_line(self) -> str: ...
    def freshness_line(self, force: bool = False) -> str | None: ...
    def advance_all(self) -> None: ...
    def due(self) -> bool: ...
    def nothing_pending(self) -> bool: ...
    def flush(self, after: Callable[[], None] | None = None, windows: bool = True) -> None: ...
    def idle(self, timeout: float | None = None) -> bool: ...


class Leader(Protocol):
    """The alert detector run by the group leader (``wcs_analytics.alert_leader``)."""

    def step(self, final: bool = False) -> list[dict[str, Any]]: ...


def part_name(tp: Any) -> str:
    return f"{tp.topic}/{tp.partition}"


class Flusher:
    """Flush-then-ack, one flush at a time, bounded by the engine's single in-flight insert."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = asyncio.Lock()
        self.stream: Any = None  # the agent's stream (acks go through it)
        self.unacked: list[Any] = []  # fed since the last flush
        self.inflight: list[Any] = []  # in the flush being written
        self.flushes = 0
        self.waited_s = 0.0  # flushes waiting for the previous insert (ClickHouse behind)

    async def flush(self, force: bool = False, windows: bool = True) -> None:
        if not force and not self.engine.due():
            await self._ack_settled()
            return
        async with self.lock:
            started = time.monotonic()
            if not self.engine.idle(0):
                await asyncio.to_thread(self.engine.idle)
            self.waited_s += time.monotonic() - started
            await self._ack(self.inflight)
            self.engine.flush(windows=windows)
            self.inflight, self.unacked = self.unacked, []
            self.flushes += 1
            log.info(
                "flush %d (%.1f s waited for inserts so far): %s",
                self.flushes, self.waited_s, self.engine.progress_line(),
            )  # fmt: skip

    async def _ack_settled(self) -> None:
        """Without more input: ack the flush once written, and records that left nothing to
        write (skipped as already applied, dead-lettered), so the commit is not held back."""
        if self.lock.locked() or not self.engine.idle(0):
            return
        await self._ack(self.inflight)
        self.inflight = []
        if self.unacked and self.engine.nothing_pending():
            await self._ack(self.unacked)
            self.unacked = []

    async def settle(self, wait_s: float) -> bool:
        """Wait (bounded) for the last flush, then ack it."""
        async with self.lock:
            done = await asyncio.to_thread(self.engine.idle, wait_s)
            if done:
                await self._ack(self.inflight)
                self.inflight = []
            return done

    async def _ack(self, events: list[Any]) -> None:
        if self.stream is None:
            return
        for event in events:
            await self.stream.ack(event)


def create_app(
    app_id: str,
    options: dict[str, Any],
    topics: Sequence[str],
    dead_letter_topic: str,
    engine_factory: Callable[[], Engine],
    leader_factory: Callable[[], Leader] | None = None,
    alerts_topic: str | None = None,
    notify: Callable[[list[dict[str, Any]]], None] | None = None,
    take_within_s: float = 1.0,
    follow_wall: bool = True,
    take_records: int = 1000,
    on_shutdown: Callable[[], None] | None = None,
) -> faust.App:
    """A Faust app over ``topics``; the engine is created when the worker starts."""
    app = faust.App(app_id, autodiscover=False, **options)
    source = app.topic(*topics, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")  # fmt: skip
    dead_topic = app.topic(dead_letter_topic, key_serializer="raw", value_serializer="raw")
    alert_topic = app.topic(alerts_topic, value_serializer="raw") if alerts_topic else None
    holder: dict[str, Any] = {}
    owned: set[str] = set()

    def engine() -> Engine:
        if "engine" not in holder:
            holder["engine"] = engine_factory()
            holder["flusher"] = Flusher(holder["engine"])
        return holder["engine"]  # type: ignore[no-any-return]

    async def send_dead(eng: Engine) -> None:
        dead, eng.dead[:] = list(eng.dead), []
        for reason, value in dead:
            await dead_topic.send(key=reason.encode()[:200], value=value)

    @app.agent(source, name="wcs-input")
    async def process(stream: Any) -> None:
        eng = engine()
        flusher: Flusher = holder["flusher"]
        flusher.stream = stream
        async for events in stream.noack_take(take_records, within=take_within_s):
            for event in events:
                name = part_name(event.message.tp)
                if name not in owned:
                    continue  # revoked while buffered: its new owner reads it again
                if name not in eng.parts:  # load every owned partition not loaded yet
                    missing = sorted(owned.difference(eng.parts) | {name})
                    for part in await asyncio.to_thread(eng.assign, missing):
                        if part.name in owned:  # not revoked while loading
                            eng.add(part)
                    if name not in eng.parts:
                        continue
                eng.feed(name, event.message.offset, event.value)
                flusher.unacked.append(event)
            if eng.dead:
                await send_dead(eng)
            await flusher.flush()

    @app.timer(TICK_S, name="wcs-tick")  # type: ignore[untyped-decorator]
    async def tick() -> None:
        if "engine" in holder:
            eng = holder["engine"]
            eng.tick()
            await holder["flusher"].flush()
            line = eng.freshness_line()
            if line is not None:
                log.info("%s", line)

    if leader_factory is not None:

        @app.timer(TICK_S, on_leader=True, name="wcs-alerts")  # type: ignore[untyped-decorator]
        async def alerts() -> None:
            await leader_step(holder, leader_factory, alert_topic, notify, final=False)

    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        owned.update(part_name(tp) for tp in assigned if tp.topic in topics)

    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        names = [part_name(tp) for tp in revoked if tp.topic in topics]
        owned.difference_update(names)
        if "engine" in holder:
            await holder["flusher"].settle(10.0)
            holder["engine"].revoke(names)

    async def before_shutdown(sender: Any, **kwargs: Any) -> None:
        """Flush and wait, bounded. At the end of a recording (``events`` clock, nothing left
        to read) every partition first moves to the worker's clock, as embedded ``finish``
        leaves one clock for everything; a worker stopped while behind leaves that to
        whoever continues."""
        if "engine" not in holder:
            return
        eng, flusher = holder["engine"], holder["flusher"]
        if not follow_wall and _caught_up(app, eng):
            eng.advance_all()
        await flusher.flush(force=True)
        done = await flusher.settle(25.0)
        log.info("shutdown: %d partitions flushed: %s", len(eng.parts), done)
        line = eng.freshness_line(force=True)
        if line is not None:
            log.info("%s", line)
        if leader_factory is not None and app.is_leader():
            await leader_step(holder, leader_factory, alert_topic, notify, final=True)
        if on_shutdown is not None:
            await asyncio.to_thread(on_shutdown)  # e.g. the webhook queue drains

    hooks: Any = app  # mode's signal typing rejects plain handlers
    hooks.on_partitions_assigned.connect(on_assigned, weak=False)
    hooks.on_partitions_revoked.connect(on_revoked, weak=False)
    hooks.on_before_shutdown.connect(before_shutdown, weak=False)
    return app


def _caught_up(app: Any, eng: Engine) -> bool:
    """Every owned partition applied up to its last known high watermark."""
    for tp in app.consumer.assignment():
        name = part_name(tp)
        part = eng.parts.get(name)
        high = app.consumer.highwater(tp)
        if high is not None and high > 0 and (part is None or part.applied + 1 < high):
            return False
    return True


async def leader_step(
    holder: dict[str, Any],
    leader_factory: Callable[[], Leader],
    topic: Any,
    notify: Callable[[list[dict[str, Any]]], None] | None,
    final: bool,
) -> None:
    # One step at a time: the timer's step may still run in its thread when shutdown's final
    # step starts, and the detector's ClickHouse client takes one query at a time.
    lock = holder.setdefault("leader_lock", asyncio.Lock())
    async with lock:
        if "leader" not in holder:
            holder["leader"] = await asyncio.to_thread(leader_factory)
        fired = await asyncio.to_thread(holder["leader"].step, final)
    if not fired:
        return
    if topic is not None:
        import orjson

        for row in fired:
            await topic.send(key=row["alert_id"].encode(), value=orjson.dumps(row))
    if notify is not None:
        notify(fired)
