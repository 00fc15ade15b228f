"""The Kafka bus's batching and answers, on an in-memory link (the real broker: integration).

``MemoryLink`` keeps every record and lets the test acknowledge (or fail) each one,
so "answered only once the record holding the envelope is acknowledged" is visible.
The disk spool is the real one, in a temporary directory (it is only written when
a test makes a delivery fail).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from events.catalog import resolve
from events.envelope import Envelope, IdSource, decode, make
from events.records import decode_batch
from ingest.kafka_batch import BatchLimits, partition_of
from ingest.kafka_bus import KafkaBus
from ingest.kafka_record import KafkaBusConfig, KafkaRecord
from ingest.spool import DiskSpool

PARTITIONS = 3


class MemoryLink:
    """``ingest.kafka_link.Link`` in memory: records kept, acks given by the test."""

    def __init__(self) -> None:
        self.records: list[KafkaRecord] = []
        self.deliveries: list[asyncio.Future[Any]] = []
        self.ready = False

    async def connect(self) -> bool:
        self.ready = True
        return True

    def partition(self, topic: str, key: bytes) -> int:
        return partition_of(key, PARTITIONS)

    async def send(self, record: KafkaRecord) -> asyncio.Future[Any]:
        self.records.append(record)
        self.deliveries.append(asyncio.get_running_loop().create_future())
        return self.deliveries[-1]

    async def close(self, timeout_s: float) -> bool:
        self.ready = False
        return True

    def ack_all(self) -> None:
        for delivery in self.deliveries:
            if not delivery.done():
                delivery.set_result(None)


IDS = IdSource("bus")


def _envelope(call: str, n: int) -> Envelope:
    body = {"callId": call, "nodeId": "n", "sessionId": "s", "n": n}
    return make(resolve("CallStatusEvent"), body, 1_700_000_000_000 + n, IDS())


def _run(
    tmp_path: Path,
    scenario: Callable[[KafkaBus, MemoryLink], Awaitable[None]],
    **config: Any,
) -> KafkaBus:
    link = MemoryLink()
    bus = KafkaBus(link, DiskSpool(tmp_path / "spool", 1 << 20), KafkaBusConfig(**config))

    async def main() -> None:
        await bus.start()
        try:
            await scenario(bus, link)
        finally:
            link.ack_all()
            await bus.close()

    asyncio.run(main())
    return bus


async def _until(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


def _published(records: list[KafkaRecord]) -> list[tuple[int, Envelope]]:
    return [(r.partition, e) for r in records for e in decode_batch(r.value)]


LINGER = BatchLimits(linger_s=0.02, max_envelopes=1000, max_bytes=1 << 19)


def test_ack_broker_answers_once_the_record_is_acknowledged(tmp_path: Path) -> None:
    envelopes = [_envelope(f"call-{n % 6}", n) for n in range(60)]

    async def scenario(bus: KafkaBus, link: MemoryLink) -> None:
        answers = [bus.publish(e) for e in envelopes]
        assert all(isinstance(a, asyncio.Future) for a in answers)
        await _until(lambda: sum(int(r.headers[1][1]) for r in link.records) == 60)
        await asyncio.sleep(0.01)
        assert not any(a.done() for a in answers if isinstance(a, asyncio.Future))
        first = link.records[0]
        members = {e["id"] for e in decode_batch(first.value)}
        link.deliveries[0].set_result(None)
        await asyncio.sleep(0)
        done = {e["id"] for e, a in zip(envelopes, answers, strict=True) if a and a.done()}
        assert done == members  # exactly the envelopes of the acknowledged record
        link.ack_all()
        await asyncio.gather(*(a for a in answers if a is not None))

    bus = _run(tmp_path, scenario, batch=LINGER)
    link_records = bus.stats.records
    assert link_records <= PARTITIONS  # 60 envelopes in one linger: one record per partition
    assert bus.stats.acked == bus.stats.produced == 60


def test_records_keep_publish_order_per_partition_and_key_to_partition(tmp_path: Path) -> None:
    envelopes = [_envelope(f"call-{n % 7}", n) for n in range(200)]
    limits = BatchLimits(linger_s=0.002, max_envelopes=9, max_bytes=4000)
    seen: list[KafkaRecord] = []

    async def scenario(bus: KafkaBus, link: MemoryLink) -> None:
        for start in range(0, 200, 25):  # a few publishing bursts
            for envelope in envelopes[start : start + 25]:
                bus.publish(envelope)
            await asyncio.sleep(0.003)
        await _until(lambda: sum(int(r.headers[1][1]) for r in link.records) == 200)
        seen.extend(link.records)

    _run(tmp_path, scenario, batch=limits)
    published = _published(seen)
    assert sorted(e["id"] for _, e in published) == sorted(e["id"] for e in envelopes)
    for partition, envelope in published:
        assert partition == partition_of(envelope["key"].encode(), PARTITIONS)
    for partition in range(PARTITIONS):
        got = [e["body"]["n"] for p, e in published if p == partition]
        assert got == sorted(got)
    for record in seen:
        assert partition_of(record.key, PARTITIONS) == record.partition
        assert len(decode_batch(record.value)) <= 9
        assert len(record.value) <= 4000


def test_a_full_batch_does_not_wait_for_its_linger(tmp_path: Path) -> None:
    limits = BatchLimits(linger_s=0.5, max_envelopes=4, max_bytes=1 << 19)  # 0.5 s: never reached

    async def scenario(bus: KafkaBus, link: MemoryLink) -> None:
        for n in range(4):
            bus.publish(_envelope("call-1", n))
        await _until(lambda: len(link.records) == 1, within_s=0.25)
        bus.publish(_envelope("call-1", 4))
        await asyncio.sleep(0.05)
        assert len(link.records) == 1  # the fifth lingers

    bus = _run(tmp_path, scenario, batch=limits, hook_budget_ms=2000)
    assert bus.stats.records == 2  # the lingering one was sent on close


def test_ack_buffer_answers_at_once_until_the_bus_is_full(tmp_path: Path) -> None:
    async def scenario(bus: KafkaBus, link: MemoryLink) -> None:
        answers = [bus.publish(_envelope("call-1", n)) for n in range(5)]
        assert answers[:3] == [None, None, None]  # queued in the bus: answered
        waiting = [a for a in answers[3:] if a is not None]
        assert len(waiting) == 2 and not any(a.done() for a in waiting)
        await asyncio.gather(*waiting)  # once their record is handed to the producer
        assert len(link.records) == 1 and not link.deliveries[0].done()

    bus = _run(tmp_path, scenario, ack_buffer=True, max_unsent=3, batch=LINGER)
    assert bus.stats.produced == 5


def test_a_failed_record_spools_its_envelopes_in_order(tmp_path: Path) -> None:
    envelopes = [_envelope(f"call-{n % 4}", n) for n in range(40)]
    spooled: list[bytes] = []

    async def scenario(bus: KafkaBus, link: MemoryLink) -> None:
        answers = [bus.publish(e) for e in envelopes]
        await _until(lambda: len(link.records) >= 1)
        await _until(lambda: sum(int(r.headers[1][1]) for r in link.records) == 40)
        link.deliveries[0].set_exception(ConnectionError("broker gone"))
        await asyncio.gather(*(a for a in answers if a is not None))  # answered once fsync'd
        assert bus.router.mode == "spooling"
        payloads, _ = await bus.spool.read(bus.spool.committed, 1000)
        spooled.extend(payloads)

    bus = _run(tmp_path, scenario, batch=LINGER)
    assert [decode(p)["id"] for p in spooled] == [e["id"] for e in envelopes]
    assert bus.stats.spooled == 40 and bus.stats.acked == 0


@pytest.mark.parametrize("linger_ms", [0, 3])
def test_linger_zero_still_groups_what_was_queued_together(tmp_path: Path, linger_ms: int) -> None:
    async def scenario(bus: KafkaBus, link: MemoryLink) -> None:
        for n in range(30):
            bus.publish(_envelope("call-1", n))  # one key: one partition
        await _until(lambda: sum(int(r.headers[1][1]) for r in link.records) == 30)

    limits = BatchLimits(linger_s=linger_ms / 1000, max_envelopes=1000, max_bytes=1 << 19)
    bus = _run(tmp_path, scenario, batch=limits)
    assert bus.stats.records == 1


def test_an_idle_producer_sends_at_once_and_a_busy_one_collects(tmp_path: Path) -> None:
    limits = BatchLimits(linger_s=0.5, max_envelopes=1000, max_bytes=1 << 19)

    async def scenario(bus: KafkaBus, link: MemoryLink) -> None:
        bus.publish(_envelope("call-1", 0))
        await _until(lambda: len(link.records) == 1, within_s=0.25)  # nothing in flight
        for n in range(1, 6):
            bus.publish(_envelope(f"call-{n}", n))
        await asyncio.sleep(0.05)
        assert len(link.records) == 1  # the first record is in flight: the others collect
        link.deliveries[0].set_result(None)
        await _until(lambda: len(link.records) > 1, within_s=0.25)  # acked: send what collected
        assert sum(len(decode_batch(r.value)) for r in link.records) == 6

    bus = _run(tmp_path, scenario, batch=limits)
    assert bus.stats.records <= 1 + PARTITIONS
