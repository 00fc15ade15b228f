"""The sink agent: row topics -> ClickHouse, acking (so committing) only after the insert.

The stream is read with ``noack_take``: Faust then never acks these records on its
own, and the consumer commits an offset only once every record up to it was acked.
We ack a batch after ``ClickHouseWriter.flush`` returned (flush-then-commit,
at-least-once; ReplacingMergeTree(version) collapses re-inserted rows). A failing
flush is retried forever with backoff (the writer already retried with its
RetryPolicy); rows ClickHouse rejects for good go to the dead-letter topic with
the reason. All database calls run on one dedicated thread (chDB is per process).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from events.envelope import EnvelopeError, decode
from events.histogram import minus
from events.topics import dead_letter_topic
from processors.faust_runtime import WorkerRuntime
from sinks import freshness
from sinks.client import connect
from sinks.migrations import migrate
from sinks.writer import ClickHouseWriter

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
FRESHNESS_LOG_S = 10.0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class KafkaDeadLetter:
    """``sinks.deadletter.DeadLetter`` on the dead-letter topic; called from the DB thread,
    it blocks until the broker acknowledged every record (never drops)."""

    def __init__(self, app: Any, topic: str, loop: asyncio.AbstractEventLoop) -> None:
        self.app, self.topic, self.loop = app, topic, loop

    def write(self, table: str, reason: str, rows: Iterable[dict[str, Any]]) -> int:
        batch = list(rows)
        future = asyncio.run_coroutine_threadsafe(self._send(table, reason, batch), self.loop)
        future.result()
        log.error("dead-lettered %d %s row(s): %s", len(batch), table, reason)
        return len(batch)

    async def _send(self, table: str, reason: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            value = orjson.dumps({"table": table, "reason": reason, "row": row}, default=repr)
            await self.app.producer.send_and_wait(self.topic, None, value, None, None, None)


class Sink:
    def __init__(self, runtime: WorkerRuntime) -> None:
        self.rt = runtime
        self.settings = runtime.settings
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self.writer: ClickHouseWriter | None = None
        self._fresh_at = time.monotonic()
        self._fresh_counts: list[int] = []

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def _open(self, loop: asyncio.AbstractEventLoop) -> ClickHouseWriter:
        s = self.settings
        client = connect(s.dsn, s.database)
        applied = migrate(client, s.database)
        if applied:
            log.info("applied migrations %s", applied)
        dead = KafkaDeadLetter(self.rt.app, dead_letter_topic(s.topic_prefix), loop)
        return ClickHouseWriter(
            client,
            s.database,
            max_rows=s.batch_rows,
            max_interval_ms=s.batch_interval_ms,
            now_ms=_wall_ms,
            dead_letter=dead,
        )

    async def start(self) -> ClickHouseWriter:
        """Connect and migrate (retried with backoff until the database answers)."""
        delay = 0.5
        while self.writer is None:
            try:
                self.writer = await self._db(self._open, asyncio.get_running_loop())
            except Exception:
                log.exception("ClickHouse not ready; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
        return self.writer

    async def run(self, stream: Any) -> None:
        """The agent body."""
        writer = await self.start()
        within = self.settings.batch_interval_ms / 1000
        async for events in stream.noack_take(self.settings.batch_rows, within=within):
            await self._buffer(writer, events)
            await self._flush(writer)
            self._log_freshness(writer)
            for event in events:
                await stream.ack(event)
                tp = event.message.tp
                self.rt.sink_acked[tp] = max(self.rt.sink_acked.get(tp, -1), event.message.offset)

    async def _buffer(self, writer: ClickHouseWriter, events: list[Any]) -> None:
        for event in events:
            table = self.rt.table_of[event.message.topic]
            try:
                if table == "events":
                    writer.add_envelope(decode(event.value))
                else:
                    writer.add([(table, orjson.loads(event.value))])
            except (ValueError, EnvelopeError) as exc:  # breaks the table contract: never fits
                row = orjson.loads(event.value)
                await self.rt.dead_letter(table, f"row rejected: {exc}", [row])

    async def _flush(self, writer: ClickHouseWriter) -> None:
        delay = 0.5
        while True:
            try:
                await self._db(writer.flush)
                return
            except Exception:
                log.exception("insert into ClickHouse failed; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    def log_freshness_now(self) -> None:
        """The freshness line for the rows inserted since the last one (shutdown)."""
        if self.writer is not None:
            self._log_freshness(self.writer, force=True)

    def _log_freshness(self, writer: ClickHouseWriter, force: bool = False) -> None:
        """Every FRESHNESS_LOG_S with new rows: hook -> inserted latency of the events rows
        since the last line, and the cumulative bucket counts (sinks/freshness.py)."""
        now = time.monotonic()
        if not force and now - self._fresh_at < FRESHNESS_LOG_S:
            return
        counts = list(writer.freshness.counts)
        delta = minus(counts, self._fresh_counts or [0] * len(counts))
        if sum(delta):
            line = {"window_s": round(now - self._fresh_at, 1), **freshness.summary(delta)}
            log.info("freshness %s", orjson.dumps({**line, "counts": counts}).decode())
        self._fresh_at, self._fresh_counts = now, counts
