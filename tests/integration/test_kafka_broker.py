"""The project's own broker script gives a working Kafka: produce and consume one record."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.integration


async def _roundtrip(bootstrap: str, topic: str) -> tuple[bytes | None, bytes | None]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b'{"v":1}', key=b"call-1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    return record.key, record.value


def test_broker_round_trip(kafka_bootstrap: str, topic_prefix: str) -> None:
    key, value = asyncio.run(_roundtrip(kafka_bootstrap, f"{topic_prefix}probe"))
    assert key == b"call-1"
    assert value == b'{"v":1}'
