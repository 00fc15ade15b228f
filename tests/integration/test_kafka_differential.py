"""Differential test: the same simulated trace through embedded ``replay`` and through
real Kafka + the Faust worker gives identical rows in every table (FINAL, no version)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration import kafka_helpers as kh
from tests.integration.kafka_helpers import embedded_result

pytestmark = pytest.mark.integration

__all__ = ["embedded_result"]


def test_worker_equals_embedded_replay(
    kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    kh.publish_file(kafka_bootstrap, topic_prefix, embedded_result.trace, partitions=4)
    env = kh.worker_env(kafka_bootstrap, topic_prefix, tmp_path, partitions=4)
    worker = kh.start_worker(env, tmp_path / "worker.log")
    try:
        kh.wait_caught_up(kafka_bootstrap, topic_prefix, timeout=90)
    finally:
        assert kh.stop_worker(worker) == 0, kh.tail(tmp_path / "worker.log")
    got = kh.read_tables(kh.dsn_of(tmp_path))
    kh.assert_same(embedded_result.tables, got)
    assert "shutdown: flushed" in (tmp_path / "worker.log").read_text()
