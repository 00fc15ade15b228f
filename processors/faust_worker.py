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
from typing import Any

import faust

from events.topics import dead_letter_topic
from processors.faust_runtime import WorkerRuntime
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


async def finish(rt: WorkerRuntime, timeout_s: float = FINISH_TIMEOUT_S) -> None:
    """End-of-input flush: timeouts and windows, then rows into ClickHouse (bounded)."""
    app = rt.app
    token = uuid.uuid4().hex
    rt.finished[token] = set()
    tps = await rt.send_control("finish", token)
    await _until(lambda: set(tps) <= rt.finished[token], timeout_s, "finish records")
    await app.producer.flush()
    row_tps = [tp for tp in app.consumer.assignment() if tp.topic in rt.table_of]
    ends = await app.consumer.highwaters(*row_tps) if row_tps else {}

    def drained() -> bool:
        return all(rt.sink_acked.get(tp, -1) + 1 >= end for tp, end in ends.items())

    await _until(drained, timeout_s, "the sink")
    log.info("shutdown: flushed %d partitions, sink drained: %s", len(tps), drained())


class Worker(faust.Worker):
    """``faust.Worker`` plus topic creation on start and ``finish`` on SIGTERM/SIGINT."""

    async def on_first_start(self) -> None:
        # Table writes queue in this buffer; past max_messages every stream pauses until
        # it drains (100 by default: a stall per few dozen envelopes).
        self.app.producer.buffer.max_messages = PRODUCER_BUFFER
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
        await super().on_first_start()

    async def _stop_on_signal(self, sig: signal.Signals) -> None:
        rt = runtime_of(self.app)
        if rt is not None:
            try:
                await finish(rt)
            except Exception:
                log.exception("shutdown flush failed; unflushed work is redone by the next worker")
        await super()._stop_on_signal(sig)
