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


def _wait_for_commit(bootstrap: str, prefix: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not kh.committed_input(bootstrap, prefix):
        assert time.monotonic() < deadline, "the worker committed nothing"
        time.sleep(0.02)


def _kill_mid_stream_then_restart(
    bootstrap: str,
    prefix: str,
    embedded: kh.Embedded,
    tmp_path: Path,
    restart_module: str = "wcs_analytics.cli",
    after_commit: bool = False,
) -> str:
    """Kill a worker once it logged processing a quarter of the input (mid-stream whatever
    its speed; with ``after_commit`` also not before it committed input offsets), restart
    it with ``restart_module``, compare the tables; returns the log."""
    total = kh.publish_file(bootstrap, prefix, embedded.trace, partitions=4)
    env = kh.worker_env(bootstrap, prefix, tmp_path, partitions=4)
    log = tmp_path / "worker.log"
    first = kh.start_worker(env, log)
    try:
        _wait_for_progress(log, total // 4, timeout=90)
        if after_commit:
            _wait_for_commit(bootstrap, prefix, timeout=30)
        done = _wait_for_progress(log, 0, timeout=1)
    finally:
        first.kill()
        first.wait(10)
    assert done < total, f"killed after the input was done ({done}/{total})"
    offsets = kh.committed_input(bootstrap, prefix)
    with log.open("a") as out:  # for the post-mortem of a failure
        out.write(f"test: committed input offsets after the kill: {offsets}\n")
    committed = sum(offsets.values())
    assert committed < total, f"killed after the input was committed ({committed}/{total})"
    assert _lag(bootstrap, prefix) > 0, "killed after the input was done"
    second = kh.start_worker(env, log, restart_module)
    try:
        kh.wait_caught_up(bootstrap, prefix, timeout=90)
    finally:
        assert kh.stop_worker(second) == 0, kh.tail(log)
    text = kh.tail(log, 10**7)
    assert "re-sent" in text
    assert "PartitionsMismatch" not in text  # changelogs declared before the group join
    kh.assert_same(embedded.tables, kh.read_tables(kh.dsn_of(tmp_path)))
    return text


def test_sigkill_mid_stream_then_restart(
    kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    """Nothing lost, nothing double-counted (docs/worker.md#crash-consistency)."""
    _kill_mid_stream_then_restart(kafka_bootstrap, topic_prefix, embedded_result, tmp_path)


def test_sigkill_after_a_commit_then_restart(
    kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    """Killed once it had committed input offsets too: the restart starts from those and
    from the table state the changelogs kept, not from the beginning."""
    text = _kill_mid_stream_then_restart(
        kafka_bootstrap,
        topic_prefix,
        embedded_result,
        tmp_path,
        after_commit=True,
    )
    assert "test: committed input offsets after the kill: {}" not in text


def test_restart_commits_after_a_slow_recovery_seek(
    kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    """The restarted worker's seek answers 15 s late (tests/integration/slow_seek_worker.py),
    so records are processed and committed while it runs: Faust's recovery race, every
    time. With the guard (processors/faust_seek.py) no record is delivered during the seek
    and no committed offset moves back; without it (WCS_TEST_NO_SEEK_GUARD=1) they do
    (docs/worker.md#restart-stall)."""
    text = _kill_mid_stream_then_restart(
        kafka_bootstrap,
        topic_prefix,
        embedded_result,
        tmp_path,
        "tests.integration.slow_seek_worker",
    )
    moved = [int(n) for n in re.findall(r"seek moved committed offsets back on (\d+)", text)]
    assert moved and not any(moved), f"committed offsets moved back: {moved}"


def _adopted(log: Path) -> set[str]:
    return set(re.findall(r"adopted (\S+\[\d+\])", kh.tail(log, 10**7)))


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
    text = "".join(kh.tail(log, 10**7) for log in logs)
    assert "adopted the alert detector" in text  # the alert agents run by default
    assert "sink drained: False" not in text and "gave up" not in text, text[-3000:]
    assert "PartitionsMismatch" not in text  # changelogs declared before the group join
    merged = kh.read_merged([kh.dsn_of(d) for d in dirs])
    kh.assert_same(embedded_result.tables, merged)
