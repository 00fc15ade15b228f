"""The aiokafka producer behind the Kafka bus: connect (topics first), send, flush, close.

Idempotent producer (acks=all). Records are batch records built by the caller
(``ingest.kafka_batch``) with an explicit partition, so the producer does not
linger (``linger_ms`` 0 by default): a record is sent at once, or with the next
request while one is in flight to the broker. ``connect`` may be retried: a
failed start leaves no producer behind, so the bus keeps spooling and its
drainer tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from ingest.kafka_batch import partition_of
from ingest.kafka_record import KafkaRecord

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 30_000
MAX_BATCH_BYTES = 256 << 10


class Link(Protocol):
    """What the bus and its drainer need of a producer: ``ProducerLink``, or one in memory."""

    @property
    def ready(self) -> bool:
        """A producer is connected."""

    async def connect(self) -> bool:
        """Connect unless connected; False when Kafka is away."""

    def partition(self, topic: str, key: bytes) -> int:
        """The partition of ``key`` in ``topic`` (Kafka's default partitioner)."""

    async def send(self, record: KafkaRecord) -> asyncio.Future[Any]:
        """Queue a record (may wait for room); the future resolves on the broker's ack."""

    async def close(self, timeout_s: float) -> bool:
        """Flush and drop the producer; False when the flush did not finish in time."""


class ProducerLink:
    """Owns at most one started AIOKafkaProducer. Call on the event loop."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        *,
        linger_ms: int = 0,
        prepare: Callable[[], Awaitable[object]] | None = None,
        client_id: str = "wcs-analytics-ingest",
    ) -> None:
        self.bootstrap, self.topics, self.linger_ms = bootstrap, list(topics), linger_ms
        self.prepare, self.client_id = prepare, client_id
        self.producer: Any = None
        self._prepared = False
        self._partitions: dict[str, int] = {}  # topic -> partition count, at the last connect

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
                self._partitions[topic] = len(await producer.partitions_for(topic))
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("Kafka at %s not reachable: %s", self.bootstrap, exc or type(exc).__name__)
            if producer is not None:
                await _quietly(producer.stop())
            return False
        self.producer = producer
        log.info("Kafka producer connected to %s", self.bootstrap)
        return True

    def partition(self, topic: str, key: bytes) -> int:
        """The partition Kafka's default partitioner gives ``key`` in ``topic`` (one of
        ``topics``), from the producer's current metadata (the count at the last connect
        while there is no producer)."""
        found = self.producer.client.cluster.partitions_for_topic(topic) if self.producer else None
        return partition_of(key, len(found) if found else self._partitions[topic])

    async def send(self, record: KafkaRecord) -> asyncio.Future[Any]:
        """Queue ``record`` in the producer; the returned future resolves on the broker's ack.

        May wait while the producer's buffer for the partition is full; raises
        aiokafka's errors (KafkaTimeoutError after ``REQUEST_TIMEOUT_MS``).
        """
        future: asyncio.Future[Any] = await self.producer.send(
            record.topic,
            record.value,
            key=record.key,
            partition=record.partition,
            headers=record.headers,
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
