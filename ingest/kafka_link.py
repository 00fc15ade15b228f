"""The aiokafka producer behind the Kafka bus: connect (topics first), send, flush, close.

Idempotent producer (acks=all), batching with ``linger_ms``. ``connect`` may be
retried: a failed start leaves no producer behind, so the bus keeps spooling and
its drainer tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ingest.kafka_record import KafkaRecord

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 30_000
MAX_BATCH_BYTES = 256 << 10


class ProducerLink:
    """Owns at most one started AIOKafkaProducer. Call on the event loop."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        *,
        linger_ms: int,
        prepare: Callable[[], Awaitable[object]] | None = None,
        client_id: str = "wcs-analytics-ingest",
    ) -> None:
        self.bootstrap, self.topics, self.linger_ms = bootstrap, list(topics), linger_ms
        self.prepare, self.client_id = prepare, client_id
        self.producer: Any = None
        self._prepared = False

    @property
    def ready(self) -> bool:
        return self.producer is not None

    async def connect(self) -> bool:
        """Ensure topics (once), start a producer, load topic metadata; False when Kafka is away.

        Raises only what ``prepare`` raises on purpose (topics missing with creation off).
        """
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        if self.producer is not None:
            return True
        producer = None
        try:
            if not self._prepared and self.prepare is not None:
                await self.prepare()
            self._prepared = True
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                enable_idempotence=True,
                acks="all",
                linger_ms=self.linger_ms,
                max_batch_size=MAX_BATCH_BYTES,
                request_timeout_ms=REQUEST_TIMEOUT_MS,
            )
            await producer.start()
            for topic in self.topics:
                await producer.partitions_for(topic)
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("Kafka at %s not reachable: %s", self.bootstrap, exc or type(exc).__name__)
            if producer is not None:
                await _quietly(producer.stop())
            return False
        self.producer = producer
        log.info("Kafka producer connected to %s", self.bootstrap)
        return True

    async def send(self, record: KafkaRecord) -> asyncio.Future[Any]:
        """Queue ``record`` in the producer; the returned future resolves on the broker's ack."""
        future: asyncio.Future[Any] = await self.producer.send(
            record.topic, record.value, key=record.key, headers=record.headers
        )
        return future

    async def close(self, timeout_s: float) -> bool:
        """Flush and stop the producer; False when the flush did not finish in ``timeout_s``."""
        producer, self.producer = self.producer, None
        if producer is None:
            return True
        flushed = True
        try:
            await asyncio.wait_for(producer.flush(), timeout_s)
        except Exception as exc:  # TimeoutError or a Kafka error: spool the rest
            log.warning("Kafka producer flush incomplete at shutdown: %r", exc)
            flushed = False
        await _quietly(producer.stop(), timeout_s)
        return flushed


async def _quietly(stopping: Awaitable[Any], timeout_s: float = 5.0) -> None:
    try:
        await asyncio.wait_for(stopping, timeout_s)
    except Exception as exc:  # best effort: the producer is being thrown away
        log.debug("stopping a Kafka producer: %r", exc)
