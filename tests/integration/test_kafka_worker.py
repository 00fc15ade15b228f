"""Faust worker on real Kafka: SIGKILL mid-stream + restart, and two workers sharing four
partitions, both end with exactly the embedded replay's tables."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from tests.integration import kafka_helpers as kh
from tests.integration.kafka_helpers import embedded_result

pytestmark = pytest.mark.integration

__all__ = ["embedded_result"]

GROUP = "wcs-analytics"


def _wait_for_log(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in kh.tail(path, 10**7):
        assert time.monotonic() < deadline, f"no {text!r} in {path}:\n{kh.tail(path)}"
        time.sleep(0.2)


def _wait_for_progress(path: Path, at_least: int, timeout: float) -> int:
    """Wait for the worker's "processed N envelopes" log line with N >= ``at_least``."""
    deadline = time.monotonic() + timeout
    while True:
        counts = [int(n) for n in re.findall(r"processed (\d+) envelopes", kh.tail(path, 10**7))]
        if counts and max(counts) >= at_least:
            return max(counts)
        assert time.monotonic() < deadline, f"no progress to {at_least} in {path}:\n{kh.tail(path)}"
        time.sleep(0.02)


def _lag(bootstrap: str, prefix: str) -> int:
    return asyncio.run(kh._lag(bootstrap, f"{prefix}{GROUP}", prefix))


# Known Faust 0.15.3 recovery race (docs/worker.md, "Restart stall"): after a restart or a
# rebalance, acks made while Faust's perform_seek runs are lost from its bookkeeping and it stops
# committing the row partitions, so the group never catches up. Seen in about 1 of 3 runs of each
# test below. They stay in the suite so a fix shows up as XPASS; the issue stays open until then.
RECOVERY_RACE = pytest.mark.xfail(
    strict=False,
    reason="Faust recovery race after restart/rebalance stops row-partition commits "
    "(docs/worker.md#restart-stall); intermittent",
)


@RECOVERY_RACE
def test_sigkill_mid_stream_then_restart(
    kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    """Killed once the worker logged processing a quarter of the input (so mid-stream
    whatever its speed), then restarted: nothing lost, nothing double-counted
    (docs/worker.md#crash-consistency)."""
    total = kh.publish_file(kafka_bootstrap, topic_prefix, embedded_result.trace, partitions=4)
    env = kh.worker_env(kafka_bootstrap, topic_prefix, tmp_path, partitions=4)
    log = tmp_path / "worker.log"
    first = kh.start_worker(env, log)
    try:
        done = _wait_for_progress(log, total // 4, timeout=90)
    finally:
        first.kill()
        first.wait(10)
    assert done < total, f"killed after the input was done ({done}/{total})"
    committed = kh.committed_input(kafka_bootstrap, topic_prefix)
    assert committed < total, f"killed after the input was committed ({committed}/{total})"
    assert _lag(kafka_bootstrap, topic_prefix) > 0, "killed after the input was done"
    second = kh.start_worker(env, log)
    try:
        kh.wait_caught_up(kafka_bootstrap, topic_prefix, timeout=90)
    finally:
        assert kh.stop_worker(second) == 0, kh.tail(log)
    assert "re-sent" in kh.tail(log, 10**7)
    kh.assert_same(embedded_result.tables, kh.read_tables(kh.dsn_of(tmp_path)))


def _adopted(log: Path) -> set[str]:
    return set(re.findall(r"adopted (\S+\[\d+\])", kh.tail(log, 10**7)))


@RECOVERY_RACE
def test_two_workers_split_four_partitions(
    kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    """Both workers get partitions; A stops first (its partitions move to B), then B.
    chDB is one process per data path, so each worker's sink has its own database and
    the two are merged by version (what one ClickHouse server does with FINAL)."""
    dirs = [tmp_path / "a", tmp_path / "b"]
    envs = [kh.worker_env(kafka_bootstrap, topic_prefix, d, partitions=4) for d in dirs]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    kh.ensure_worker_topics(kafka_bootstrap, topic_prefix, partitions=4)
    workers = [kh.start_worker(envs[0], logs[0]), kh.start_worker(envs[1], logs[1])]
    try:
        for log in logs:
            _wait_for_log(log, "Worker]: Ready", timeout=60)
        time.sleep(3.0)  # let the group settle with both members before input arrives
        kh.publish_file(kafka_bootstrap, topic_prefix, embedded_result.trace, partitions=4)
        kh.wait_caught_up(kafka_bootstrap, topic_prefix, timeout=90)
        a, b = _adopted(logs[0]), _adopted(logs[1])
        assert a and b, f"both workers must hold partitions: {a} / {b}"
        assert kh.stop_worker(workers[0]) == 0, kh.tail(logs[0])
        kh.wait_caught_up(kafka_bootstrap, topic_prefix, timeout=60)
    finally:
        for proc, log in zip(workers, logs, strict=True):
            if proc.poll() is None:
                assert kh.stop_worker(proc) == 0, kh.tail(log)
    merged = kh.read_merged([kh.dsn_of(d) for d in dirs])
    kh.assert_same(embedded_result.tables, merged)
