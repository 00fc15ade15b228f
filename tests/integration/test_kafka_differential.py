"""Differential test: the same simulated trace through embedded ``replay`` and through
real Kafka + the Faust worker gives identical rows in every table (FINAL, no version)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from events.topics import dead_letter_topic, family_topic
from tests.integration import kafka_helpers as kh
from tests.integration.kafka_helpers import embedded_result
from tests.integration.kafka_ingest_helpers import kcat_json

pytestmark = pytest.mark.integration

__all__ = ["embedded_result"]


def test_worker_equals_embedded_replay(
    kcat: str, kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    kh.publish_file(kafka_bootstrap, topic_prefix, embedded_result.trace, partitions=4)
    secret = b'{"v": 1, "method": "call", "body": {"sipPassword": "dl-Secret-5521"}}'
    bad = {b"not json {": "record value is not JSON", secret: "field 'id' must be str"}
    asyncio.run(_publish(kafka_bootstrap, family_topic(topic_prefix, "call"), list(bad)))
    env = kh.worker_env(kafka_bootstrap, topic_prefix, tmp_path, partitions=4)
    worker = kh.start_worker(env, tmp_path / "worker.log")
    try:
        kh.wait_caught_up(kafka_bootstrap, topic_prefix, timeout=90)
    finally:
        assert kh.stop_worker(worker) == 0, kh.tail(tmp_path / "worker.log")
    got = kh.read_tables(kh.dsn_of(tmp_path))
    kh.assert_same(embedded_result.tables, got)
    assert "partitions flushed: True" in (tmp_path / "worker.log").read_text()
    # bad records on an input topic: dead-lettered with the reason and where they came from,
    # nothing else changed
    dead = kcat_json(kafka_bootstrap, dead_letter_topic(topic_prefix))
    reasons = sorted(str(value["reason"]) for _, _, value in dead)
    assert len(reasons) == 2 and all(
        r.startswith(want) for r, want in zip(reasons, sorted(bad.values()), strict=True)
    ), reasons
    for _, _, value in dead:
        assert value["table"] == "envelope"
        assert value["topic"] == family_topic(topic_prefix, "call")
        assert isinstance(value["offset"], int) and isinstance(value["partition"], int)
    by_reason = {str(value["reason"])[:10]: value for _, _, value in dead}
    assert by_reason["record val"]["row"] is None  # not JSON: kept by position only
    assert by_reason["field 'id'"]["row"]["body"] == {}  # the secret removed, the rest kept
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
