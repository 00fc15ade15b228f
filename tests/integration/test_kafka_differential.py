"""Differential test: the same simulated trace through embedded ``replay`` and through
real Kafka + the Faust worker gives identical rows in every table (FINAL, no version)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from events.topics import dead_letter_topic, family_topic
from tests.integration import kafka_helpers as kh
from tests.integration.kafka_helpers import embedded_result
from tests.integration.kafka_ingest_helpers import kcat_records

pytestmark = pytest.mark.integration

__all__ = ["embedded_result"]


def test_worker_equals_embedded_replay(
    kcat: str, kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    kh.publish_file(kafka_bootstrap, topic_prefix, embedded_result.trace, partitions=4)
    secret = b'{"v": 1, "method": "call", "body": {"sipPassword": "dl-Secret-5521"}}'
    bad = {b"not json {": "not JSON", secret: "not an envelope"}
    asyncio.run(_publish(kafka_bootstrap, family_topic(topic_prefix, "call"), list(bad)))
    env = kh.worker_env(kafka_bootstrap, topic_prefix, tmp_path, partitions=4)
    worker = kh.start_worker(env, tmp_path / "worker.log")
    try:
        kh.wait_caught_up(kafka_bootstrap, topic_prefix, timeout=90)
    finally:
        assert kh.stop_worker(worker) == 0, kh.tail(tmp_path / "worker.log")
    got = kh.read_tables(kh.dsn_of(tmp_path))
    kh.assert_same(embedded_result.tables, got)
    assert "shutdown: flushed" in (tmp_path / "worker.log").read_text()
    # bad records on an input topic: dead-lettered with the reason, nothing else changed
    dead = kcat_records(kafka_bootstrap, dead_letter_topic(topic_prefix))
    assert sorted(str(value["reason"]).split(":")[0] for _, _, value in dead) == sorted(
        bad.values()
    )
    assert all(value["table"] == "envelope" for _, _, value in dead)
    assert "dl-Secret-5521" not in repr(dead)  # redacted like the ingest does


async def _publish(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"bad")
    finally:
        await producer.stop()
