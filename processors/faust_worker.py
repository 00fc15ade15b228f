"""The Faust worker class: creates topics before start, flushes on SIGTERM/SIGINT.

Shutdown (``finish``), like embedded ``run``/``replay`` at the end of input: a
finish record goes to every input and window-hits partition this worker holds;
its agent fires the timeouts due at the worker's clock and emits every held
window (inside stream processing, so tables and their changelogs stay
consistent). Then the producer is flushed and the sink drains the row
partitions it holds into ClickHouse before Faust stops (and commits). Every wait
is bounded; a partition that misses the deadline is simply processed by the
next worker (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import Mapping
from typing import Any

import faust

from events.topics import dead_letter_topic
from processors.faust_runtime import WorkerRuntime
from processors.faust_seek import guard_seek
from wcs_analytics.topics import ensure_topics

log = logging.getLogger(__name__)

FINISH_TIMEOUT_S = 30.0
PRODUCER_BUFFER = 10_000


def runtime_of(app: Any) -> WorkerRuntime | None:
    rt = getattr(app, "wcs_runtime", None)
    return rt if isinstance(rt, WorkerRuntime) else None


async def _until(done: Any, timeout_s: float, what: str) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            log.warning("shutdown: gave up waiting for %s after %.0fs", what, timeout_s)
            return False
        await asyncio.sleep(0.05)
    return True


def lagging(
    ends: Mapping[Any, int], done: Mapping[Any, int], committed: Mapping[Any, int | None]
) -> dict[Any, tuple[int, int]]:
    """Partitions with records below their highwater ``ends`` that were neither handled
    here (``done``: the last offset handled) nor committed before this worker got them
    (``committed``: the next offset to read, e.g. left by the previous owner of a
    partition that has had no new record since); -> {tp: (position, end)}."""
    behind = {}
    for tp, end in ends.items():
        position = max(done.get(tp, -1) + 1, committed.get(tp) or 0)
        if position < end:
            behind[tp] = (position, end)
    return behind


async def drained(
    app: Any, tps: list[Any], done: Mapping[Any, int], timeout_s: float, what: str
) -> bool:
    """Wait (bounded) until ``done`` covers every record of ``tps`` up to their highwaters
    of now; logs the partitions still behind when it gives up."""
    ends = await app.consumer.highwaters(*tps) if tps else {}
    committed = app.consumer._committed_offset

    if await _until(lambda: not lagging(ends, done, committed), timeout_s, what):
        return True
    behind = lagging(ends, done, committed)
    log.warning("shutdown: %s behind on %s", what, {str(tp): pos for tp, pos in behind.items()})
    return False


async def finish(rt: WorkerRuntime, timeout_s: float = FINISH_TIMEOUT_S) -> None:
    """End-of-input flush: timeouts and windows, then rows into ClickHouse (bounded)."""
    app = rt.app
    token = uuid.uuid4().hex
    rt.finished[token] = set()
    tps = await rt.send_control("finish", token)
    await _until(lambda: set(tps) <= rt.finished[token], timeout_s, "finish records")
    await app.producer.flush()
    row_tps = [tp for tp in app.consumer.assignment() if tp.topic in rt.table_of]
    ok = await drained(app, row_tps, rt.sink_acked, timeout_s, "the sink")
    log.info("shutdown: flushed %d partitions, sink drained: %s", len(tps), ok)
    if rt.sink is not None:
        rt.sink.log_freshness_now()


class Worker(faust.Worker):
    """``faust.Worker`` plus topic creation on start and ``finish`` on SIGTERM/SIGINT."""

    async def on_first_start(self) -> None:
        # Table writes queue in this buffer; past max_messages every stream pauses until
        # it drains (100 by default: a stall per few dozen envelopes).
        self.app.producer.buffer.max_messages = PRODUCER_BUFFER
        guard_seek(self.app.consumer)  # Faust recovery race (processors/faust_seek.py)
        rt = runtime_of(self.app)
        if rt is not None:
            s = rt.settings
            topics = [t.get_topic_name() for t in rt.ctl_topics.values()]
            topics += [t.get_topic_name() for t in rt.row_topics.values()]
            topics.append(dead_letter_topic(s.topic_prefix))
            await ensure_topics(
                s.kafka,
                topics,
                partitions=s.topic_partitions,
                replication=s.topic_replication,
                create=s.create_topics,
            )
            # declared now, not when the tables start: a changelog created just before the
            # group join is missing from the consumer's metadata, and the agents using the
            # table crash-loop with PartitionsMismatch ("... has 0 partitions")
            for table in (rt.entity_table, rt.window_table, rt.clock_table):
                await table.changelog_topic.maybe_declare()
        await super().on_first_start()

    async def _stop_on_signal(self, sig: signal.Signals) -> None:
        rt = runtime_of(self.app)
        if rt is not None:
            try:
                await finish(rt)
            except Exception:
                log.exception("shutdown flush failed; unflushed work is redone by the next worker")
        await super()._stop_on_signal(sig)
