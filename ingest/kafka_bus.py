"""The Kafka bus: ``events.bus.Bus`` on an idempotent aiokafka producer with a disk spool.

``publish`` returns a future the hook awaits before answering WCS:
- ``ack=broker``: done when the broker acknowledged the record; ``ack=buffer``:
  done once the record is queued in the producer (a crash loses queued records).
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
from ingest.kafka_drain import Drainer
from ingest.kafka_link import ProducerLink
from ingest.kafka_metrics import KafkaStats
from ingest.kafka_record import KafkaRecord, Router, ack_wait_s, to_record
from ingest.spool import DiskSpool, SpoolFull

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KafkaBusConfig:
    topic_prefix: str = "wcs."
    ack_buffer: bool = False  # True: answer once queued in the producer
    hook_budget_ms: int = 2000
    reject_when_full: bool = False  # spool full: answer 503 (True) or drop and answer 200
    close_timeout_s: float = 10.0


@dataclass(slots=True)
class _Waiting:
    record: KafkaRecord
    answer: asyncio.Future[None]
    timer: asyncio.TimerHandle | None = None


class KafkaBus:
    """Call ``start`` before the first ``publish`` and ``close`` after the last (one loop)."""

    def __init__(
        self,
        link: ProducerLink,
        spool: DiskSpool,
        config: KafkaBusConfig,
        drops: DropLog | None = None,
    ) -> None:
        self.link, self.spool, self.config = link, spool, config
        self.drops = drops if drops is not None else DropLog()
        self.stats = KafkaStats()
        self.router = Router()
        self._ack_wait = ack_wait_s(config.hook_budget_ms)
        self._waiting: dict[int, _Waiting] = {}  # publish order: not acked (not queued) yet
        self._queue: deque[int] = deque()
        self._queued = asyncio.Event()
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
    def publish(self, envelope: Envelope) -> asyncio.Future[None]:
        record = to_record(self.config.topic_prefix, envelope)
        answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.router.spooling:
            self._spool(record, answer)
            return answer
        seq = next(self._seq)
        waiting = _Waiting(record, answer)
        waiting.timer = answer.get_loop().call_later(self._ack_wait, self._expired, seq)
        self._waiting[seq] = waiting
        self._queue.append(seq)
        self._queued.set()
        return answer

    def depth(self) -> int:
        return len(self._waiting) + max(0, self.stats.spooled - self.stats.drained)

    async def _send_loop(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                seq = self._queue.popleft()
                waiting = self._waiting.get(seq)
                if waiting is None:  # spooled meanwhile
                    continue
                try:
                    delivery = await self.link.send(waiting.record)
                except Exception as exc:
                    self._failed(f"send failed: {exc!r}")
                    continue
                self.stats.produced += 1
                delivery.add_done_callback(partial(self._delivered, seq))
                if self.config.ack_buffer:
                    _answer(waiting)

    def _delivered(self, seq: int, delivery: asyncio.Future[Any]) -> None:
        error = None if delivery.cancelled() else delivery.exception()
        if delivery.cancelled() or error is not None:
            self.stats.producer_errors += 1
            if seq in self._waiting:  # else: spooled already
                self.spool_waiting(f"delivery failed: {error!r}")
            return
        waiting = self._waiting.pop(seq, None)
        if waiting is not None:
            self.stats.acked += 1
            _answer(waiting)

    def _expired(self, seq: int) -> None:
        waiting = self._waiting.get(seq)
        if waiting is not None and not waiting.answer.done():
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
        for item in waiting:
            if item.timer is not None:
                item.timer.cancel()
            self._spool(item.record, item.answer)
        self._drainer.wake()

    def _spool(self, record: KafkaRecord, answer: asyncio.Future[None]) -> None:
        try:
            written = self.spool.append(record.value)
        except SpoolFull as exc:
            self._spool_full(answer, exc)
            return
        self.stats.spooled += 1
        written.add_done_callback(partial(self._spooled, answer))

    def _spooled(self, answer: asyncio.Future[None], written: asyncio.Future[None]) -> None:
        error = written.exception()
        if isinstance(error, SpoolFull):
            self._spool_full(answer, error)
        elif not answer.done():
            answer.set_result(None)

    def _spool_full(self, answer: asyncio.Future[None], error: SpoolFull) -> None:
        self.stats.spool_full += 1
        answered = answer.done()  # ack=buffer: WCS already got its 200, so this one is lost
        reject = self.config.reject_when_full and not answered
        self.drops.note(error.reason, str(error), rejected=reject)
        if answered:
            return
        if reject:
            answer.set_exception(BusRejected(str(error)))
        else:
            answer.set_result(None)

    # -- shutdown and metrics ----------------------------------------------------------------
    async def close(self) -> None:
        """Flush the producer (spooling what it could not deliver), stop tasks, close the spool."""
        # every hook was answered (uvicorn finished them): what is left waits for its ack only
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.link.close(self.config.close_timeout_s)
        if self._waiting:
            self.spool_waiting("shutting down before Kafka acknowledged")
        await self.spool.close()
        log.info("Kafka bus closed: %s", self.stats)

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
    if not waiting.answer.done():
        waiting.answer.set_result(None)
