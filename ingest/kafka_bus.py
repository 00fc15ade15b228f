"""The Kafka bus: ``events.bus.Bus`` on an idempotent aiokafka producer with a disk spool.

Envelopes of one topic partition are packed into batch records (``events.records``,
``ingest.kafka_batch``): a single sender task adds queued envelopes to the open
batch of their partition and sends a batch once it is full, its linger is over,
or no record is in flight (nothing to wait for: while one is, envelopes collect).
``publish`` returns a future the hook awaits before answering WCS:
- ``ack=broker``: done when the broker acknowledged the record holding the
  envelope; ``ack=buffer``: done once the envelope is queued in the bus (at once
  while fewer than ``max_unsent`` envelopes wait to be handed to the producer,
  else when its record is; a crash loses what is queued and not yet delivered).
- Either way, when that does not happen within the hook budget (Kafka slow or
  down) the envelope and every other one still waiting go to the disk spool, in
  publish order, and the future is done once they are fsync'd. From then on
  every envelope goes to the spool (per-key order) until the drainer has
  re-published the spool and caught up. A record whose ack came late may
  therefore reach Kafka twice: at-least-once, downstream is idempotent.
- The future never fails, except with ``BusRejected`` when the spool is full or cannot
  be written and the policy is ``reject`` (``drop``: answered as accepted); either way the
  envelope is counted in ``drops`` (``ingest.drops``: /metrics, /health, one log line per
  interval).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any

from events.bus import BusRejected
from events.envelope import Envelope
from ingest import kafka_metrics
from ingest.drops import DropLog
from ingest.kafka_batch import Batch, Batcher
from ingest.kafka_drain import Drainer
from ingest.kafka_link import Link
from ingest.kafka_metrics import KafkaStats
from ingest.kafka_record import (
    KafkaBusConfig,
    Outgoing,
    Router,
    ack_wait_s,
    outgoing,
    record_of,
)
from ingest.spool import DiskSpool, SpoolFull

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Waiting:
    envelope: Outgoing
    answer: asyncio.Future[None] | None  # None: answered when published (ack=buffer)
    timer: asyncio.TimerHandle | None = None


class KafkaBus:
    """Call ``start`` before the first ``publish`` and ``close`` after the last (one loop)."""

    def __init__(
        self,
        link: Link,
        spool: DiskSpool,
        config: KafkaBusConfig,
        drops: DropLog | None = None,
    ) -> None:
        self.link, self.spool, self.config = link, spool, config
        self.drops = drops if drops is not None else DropLog()
        self.stats = KafkaStats()
        self.router = Router()
        self._ack_wait = ack_wait_s(config.hook_budget_ms)
        self._waiting: dict[int, _Waiting] = {}  # publish order: not acked yet
        self._queue: deque[int] = deque()  # published, not in a batch yet
        self._batcher: Batcher[int] = Batcher(config.batch)
        self._wake = asyncio.Event()
        self._linger: asyncio.TimerHandle | None = None
        self._in_flight = 0  # direct records sent and not yet acknowledged (or failed)
        self._seq = itertools.count()
        self._drainer = Drainer(self)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open the spool, connect (Kafka away: start spooling), start the sender and drainer."""
        self.spool.open()
        connected = await self.link.connect()
        if not connected or not self.spool.caught_up(self.spool.committed):
            self.router.spooled()
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="kafka-send"),
            asyncio.create_task(self._drainer.run(), name="kafka-drain"),
        ]
        self._drainer.wake()

    # -- the hook path -----------------------------------------------------------------------
    def publish(self, envelope: Envelope) -> asyncio.Future[None] | None:
        """None when the envelope is accepted at once (ack=buffer, room in the bus), else
        a future done on the broker's ack, on being queued, or once spooled."""
        item = outgoing(self.config.topic_prefix, envelope)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[None] | None = None
        if self.router.spooling:
            answer = loop.create_future()
            self._spool(item.value, answer)
            return answer
        seq = next(self._seq)
        if self.config.ack_buffer and self.unsent < self.config.max_unsent:
            waiting = _Waiting(item, None)  # queued in the bus: as durable as the producer's buffer
        else:
            answer = loop.create_future()
            waiting = _Waiting(item, answer, loop.call_later(self._ack_wait, self._expired, seq))
        self._waiting[seq] = waiting
        self._queue.append(seq)
        self._wake.set()
        return answer

    @property
    def unsent(self) -> int:
        """Envelopes published and not yet handed to the producer (an upper bound)."""
        return len(self._queue) + self._batcher.pending

    def depth(self) -> int:
        return len(self._waiting) + max(0, self.stats.spooled - self.stats.drained)

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._collect(loop.time())
            # nothing in flight: no reason to wait, send now; else the linger collects more
            ready = self._batcher.drain() if not self._in_flight else self._batcher.due(loop.time())
            for batch in ready:
                await self._produce(batch)
            due = self._batcher.next_due()
            if due is not None and self._linger is None:
                self._linger = loop.call_at(due, self._linger_over)

    def _linger_over(self) -> None:
        self._linger = None
        self._wake.set()

    async def _collect(self, now: float) -> None:
        """Queued envelopes into the batches of their partitions; full batches are sent."""
        while self._queue:
            seq = self._queue.popleft()
            waiting = self._waiting.get(seq)
            if waiting is None:  # spooled meanwhile
                continue
            item = waiting.envelope
            try:
                partition = self.link.partition(item.topic, item.key)
            except Exception as exc:  # no metadata for the topic: treat like a failed send
                self._failed(f"no partition for {item.topic}: {exc!r}")
                continue
            for batch in self._batcher.add(item.topic, partition, item.key, item.value, seq, now):
                await self._produce(batch)

    async def _produce(self, batch: Batch[int]) -> None:
        """Send one batch record (without the envelopes spooled since it was filled)."""
        seqs, values = batch.tokens, batch.values
        if any(seq not in self._waiting for seq in seqs):
            seqs = [seq for seq in seqs if seq in self._waiting]
            values = [self._waiting[seq].envelope.value for seq in seqs]
            if not seqs:
                return
        key = self._waiting[seqs[0]].envelope.key
        try:
            delivery = await self.link.send(record_of(batch.topic, batch.partition, key, values))
        except Exception as exc:
            self._failed(f"send failed: {exc!r}")
            return
        self.stats.records += 1
        self._in_flight += 1
        self.stats.produced += len(seqs)
        delivery.add_done_callback(partial(self._delivered, seqs))
        if self.config.ack_buffer:
            for seq in seqs:
                waiting = self._waiting.get(seq)
                if waiting is not None:
                    _answer(waiting)

    def _delivered(self, seqs: list[int], delivery: asyncio.Future[Any]) -> None:
        self._in_flight -= 1
        if not self._in_flight and self._batcher.pending:
            self._wake.set()
        error = None if delivery.cancelled() else delivery.exception()
        if delivery.cancelled() or error is not None:
            self.stats.producer_errors += 1
            if any(seq in self._waiting for seq in seqs):  # else: spooled already
                self.spool_waiting(f"delivery failed: {error!r}")
            return
        for seq in seqs:
            waiting = self._waiting.pop(seq, None)
            if waiting is not None:
                self.stats.acked += 1
                _answer(waiting)

    def _expired(self, seq: int) -> None:
        waiting = self._waiting.get(seq)
        if waiting is not None and waiting.answer is not None and not waiting.answer.done():
            self.spool_waiting(f"no Kafka answer within {self._ack_wait:.2f}s")

    def _failed(self, reason: str) -> None:
        self.stats.producer_errors += 1
        if self._waiting:
            self.spool_waiting(reason)

    def spool_waiting(self, reason: str) -> None:
        """Kafka is slow or down: spool every envelope still waiting, in publish order."""
        if self.router.spooled():
            log.warning(
                "Kafka slow or down (%s): spooling envelopes to %s", reason, self.spool.directory
            )
        waiting, self._waiting = list(self._waiting.values()), {}
        self._queue.clear()
        self._batcher.drain()  # their envelopes are among ``waiting``
        for item in waiting:
            if item.timer is not None:
                item.timer.cancel()
            self._spool(item.envelope.value, item.answer)
        self._drainer.wake()

    def _spool(self, payload: bytes, answer: asyncio.Future[None] | None) -> None:
        try:
            written = self.spool.append(payload)
        except SpoolFull as exc:
            self._spool_full(answer, exc)
            return
        self.stats.spooled += 1
        written.add_done_callback(partial(self._spooled, answer))

    def _spooled(self, answer: asyncio.Future[None] | None, written: asyncio.Future[None]) -> None:
        error = written.exception()
        if isinstance(error, SpoolFull):
            self._spool_full(answer, error)
        elif answer is not None and not answer.done():
            answer.set_result(None)

    def _spool_full(self, answer: asyncio.Future[None] | None, error: SpoolFull) -> None:
        self.stats.spool_full += 1
        # ack=buffer: WCS already got its 200 (no answer waits, or it is done): it is lost
        answered = answer is None or answer.done()
        reject = self.config.reject_when_full and not answered
        self.drops.note(error.reason, str(error), rejected=reject)
        if answer is None or answered:
            return
        if reject:
            answer.set_exception(BusRejected(str(error)))
        else:
            answer.set_result(None)

    # -- shutdown and metrics ----------------------------------------------------------------
    async def close(self) -> None:
        """Send the open batches, flush the producer (spooling what it could not deliver),
        stop tasks, close the spool."""
        # every hook was answered (uvicorn finished them): what is left waits for its ack only
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._linger is not None:
            self._linger.cancel()
        if not self.router.spooling and self.link.ready:
            try:
                await asyncio.wait_for(self._send_open(), self.config.close_timeout_s)
            except TimeoutError:
                log.warning("Kafka did not take the last batches in time: they are spooled")
        await self.link.close(self.config.close_timeout_s)
        if self._waiting:
            self.spool_waiting("shutting down before Kafka acknowledged")
        await self.spool.close()
        log.info("Kafka bus closed: %s", self.stats)

    async def _send_open(self) -> None:
        loop = asyncio.get_running_loop()
        await self._collect(loop.time())
        for batch in self._batcher.drain():
            await self._produce(batch)

    def metrics(self) -> str:
        policy = "reject" if self.config.reject_when_full else "drop"
        spool = self.spool
        return kafka_metrics.render(
            self.stats, self.router.mode, spool.bytes_used, spool.segments, policy
        )


def _answer(waiting: _Waiting) -> None:
    if waiting.timer is not None:
        waiting.timer.cancel()
        waiting.timer = None
    if waiting.answer is not None and not waiting.answer.done():
        waiting.answer.set_result(None)
