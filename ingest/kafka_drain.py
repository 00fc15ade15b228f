"""The spool drainer: re-publishes spooled envelopes in order, then hands back to direct sends.

Runs while the bus is spooling. Each pass reads up to ``BATCH`` envelopes from
the committed position, packs them into batch records per topic partition (the
bus's limits, spool order kept), sends them, waits for every ack, then commits
the position (a failed
pass is retried from the committed position: duplicates, never gaps). While
Kafka keeps failing it probes with one record at a time and backs off. When a
read finds nothing left and nothing pending, the bus switches to direct sends
in the same step, so no envelope can overtake an older spooled one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, Protocol

from ingest.kafka_batch import pack
from ingest.kafka_link import Link
from ingest.kafka_metrics import KafkaStats
from ingest.kafka_record import KafkaBusConfig, Outgoing, Router, batch_record, from_spool
from ingest.spool import DiskSpool


class DrainedBus(Protocol):
    """What the drainer uses of ``ingest.kafka_bus.KafkaBus`` (no import cycle)."""

    config: KafkaBusConfig
    router: Router
    link: Link
    spool: DiskSpool
    stats: KafkaStats


log = logging.getLogger(__name__)

BATCH: Final = 2000
SEND_TIMEOUT_S: Final = 10.0
BACKOFF_S: Final = (0.2, 5.0)
RESET_AFTER_FAILURES: Final = 3  # then the producer is replaced (it may be stuck in an error)


class Drainer:
    def __init__(self, bus: DrainedBus) -> None:
        self.bus = bus
        self.failures = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        backoff = BACKOFF_S[0]
        while True:
            await self._wake.wait()
            if not self.bus.router.spooling:
                self._wake.clear()
                continue
            try:
                progressed = await self._pass()
            except Exception:  # e.g. topics missing with creation off: keep spooling, retry
                log.exception("draining the Kafka spool failed")
                progressed = False
            if progressed:
                self.failures, backoff = 0, BACKOFF_S[0]
                continue
            self.failures += 1
            if self.failures % RESET_AFTER_FAILURES == 0:
                await self.bus.link.close(1.0)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_S[1])

    async def _pass(self) -> bool:
        bus, spool = self.bus, self.bus.spool
        if not await bus.link.connect():
            return False
        start = spool.committed
        payloads, after = await spool.read(start, 1 if self.failures else BATCH)
        if not payloads:
            if bus.router.drained(spool.caught_up(after), bus.link.ready):
                log.info(
                    "Kafka spool drained (%d re-published): direct sends again", bus.stats.drained
                )
            if after != start:
                await spool.commit(after)
            elif bus.router.spooling:
                await asyncio.sleep(spool.flush_interval_s)  # records waiting for their fsync
            return True
        if not await self._republish(payloads):
            return False
        await spool.commit(after)
        bus.stats.drained += len(payloads)
        return True

    async def _republish(self, payloads: list[bytes]) -> bool:
        bus = self.bus
        envelopes: list[Outgoing] = []
        for payload in payloads:
            try:
                envelopes.append(from_spool(bus.config.topic_prefix, payload))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.error("spooled record skipped, not an envelope: %r", exc)
        items = ((item.topic, item.key, item.value) for item in envelopes)
        batches = pack(items, bus.config.batch, bus.link.partition)
        deliveries: list[asyncio.Future[Any]] = []
        try:
            for batch in batches:
                record = batch_record(batch)
                deliveries.append(await asyncio.wait_for(bus.link.send(record), SEND_TIMEOUT_S))
                bus.stats.records += 1
                bus.stats.produced += len(batch.values)
        except Exception as exc:
            bus.stats.producer_errors += 1
            log.warning("re-publishing spooled envelopes: send failed: %r", exc)
            await asyncio.gather(*deliveries, return_exceptions=True)
            return False
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            bus.stats.producer_errors += len(errors)
            log.warning("re-publishing spooled envelopes: %d not acked: %r", len(errors), errors[0])
            return False
        return True
