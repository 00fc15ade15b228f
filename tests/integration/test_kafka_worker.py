"""The Kafka worker on a real broker: killed at any point of a flush and restarted, stopped
while far behind, two workers sharing the partitions -- always exactly the embedded
replay's tables (docs/worker.md#crash-consistency)."""

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
# small records and takes, small flushes: a worker far from done for a while (so the kills
# below land mid-stream) and many flushes
SLOW = {"WCS_WORKER_TAKE_RECORDS": "5", "WCS_BATCH_ROWS": "300"}
PER_RECORD = 10


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


def _restart_and_compare(
    env: dict[str, str], log: Path, bootstrap: str, prefix: str, embedded: kh.Embedded, dsn: str
) -> str:
    fast = env | {"WCS_WORKER_TAKE_RECORDS": "1000", "WCS_BATCH_ROWS": "100000"}
    second = kh.start_worker(fast, log)
    try:
        kh.wait_caught_up(bootstrap, prefix, timeout=120)
    finally:
        assert kh.stop_worker(second) == 0, kh.tail(log)
    kh.assert_same(embedded.tables, kh.read_tables(dsn))
    return kh.tail(log, 10**7)


def test_sigkill_mid_stream_then_restart(
    kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    """Killed once it processed a quarter of the input: nothing lost, nothing counted twice.
    The restart skips what the stored state already applied."""
    total = kh.publish_file(
        kafka_bootstrap, topic_prefix, embedded_result.trace, partitions=4, per_record=PER_RECORD
    )
    env = kh.worker_env(kafka_bootstrap, topic_prefix, tmp_path, partitions=4) | SLOW
    log = tmp_path / "worker.log"
    first = kh.start_worker(env, log)
    try:
        _wait_for_progress(log, total // 4, timeout=120)
    finally:
        first.kill()
        first.wait(10)
    assert _lag(kafka_bootstrap, topic_prefix) > 0, "killed after the input was done"
    text = _restart_and_compare(
        env, log, kafka_bootstrap, topic_prefix, embedded_result, kh.dsn_of(tmp_path)
    )
    assert re.search(r"adopted \S+/\d+: offset \d+", text)


@pytest.mark.parametrize("point", ["rows", "state"])
def test_crash_between_insert_and_commit(
    point: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    embedded_result: kh.Embedded,
    tmp_path: Path,
) -> None:
    """The worker dies (exit 137, like SIGKILL) right after the 3rd flush inserted its rows
    but not its state (``rows``), or its state but before the offsets were committed
    (``state``); the restart redoes exactly what is missing."""
    kh.publish_file(
        kafka_bootstrap, topic_prefix, embedded_result.trace, partitions=4, per_record=PER_RECORD
    )
    env = kh.worker_env(kafka_bootstrap, topic_prefix, tmp_path, partitions=4) | SLOW
    log = tmp_path / "worker.log"
    first = kh.start_worker(env | {"WCS_CRASH_AFTER": f"{point}:3"}, log)
    assert first.wait(120) == 137, kh.tail(log)
    assert f"crash test: exiting after the {point} of flush 3" in kh.tail(log, 10**7)
    before = len(kh.tail(log, 10**7))
    text = _restart_and_compare(
        env, log, kafka_bootstrap, topic_prefix, embedded_result, kh.dsn_of(tmp_path)
    )
    if point == "state":  # stored, not committed: Kafka re-delivers, the state skips them
        assert re.search(r"[1-9]\d* re-delivered records skipped", text[before:])


def test_sigterm_far_behind_exits_in_time(
    kafka_bootstrap: str, topic_prefix: str, embedded_result: kh.Embedded, tmp_path: Path
) -> None:
    """SIGTERM while far behind: exits 0 within 30 s, flushing what it processed; the next
    worker finishes the rest and the tables are right."""
    total = kh.publish_file(
        kafka_bootstrap, topic_prefix, embedded_result.trace, partitions=4, per_record=PER_RECORD
    )
    env = kh.worker_env(kafka_bootstrap, topic_prefix, tmp_path, partitions=4) | SLOW
    log = tmp_path / "worker.log"
    first = kh.start_worker(env, log)
    _wait_for_progress(log, total // 10, timeout=120)
    started = time.monotonic()
    assert kh.stop_worker(first, timeout=30) == 0, kh.tail(log)
    assert time.monotonic() - started < 30
    assert _lag(kafka_bootstrap, topic_prefix) > 0, "it was not behind"
    _restart_and_compare(
        env, log, kafka_bootstrap, topic_prefix, embedded_result, kh.dsn_of(tmp_path)
    )


def test_two_workers_share_the_partitions(
    kafka_bootstrap: str,
    topic_prefix: str,
    embedded_result: kh.Embedded,
    chdb_server: str,
    tmp_path: Path,
) -> None:
    """Two workers on one ClickHouse server (tests/chdb_server.py): both get partitions; A
    stops first and its partitions move to B with their stored state (the second half of
    the input arrives after that, so B reads them), then B stops."""
    dirs = [tmp_path / "a", tmp_path / "b"]
    database = f"w{int(time.time() * 1000) % 10**9}"
    envs = [
        kh.worker_env(kafka_bootstrap, topic_prefix, d, partitions=4)
        | {"WCS_CLICKHOUSE": chdb_server, "WCS_DATABASE": database}
        for d in dirs
    ]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    kh.ensure_worker_topics(kafka_bootstrap, topic_prefix, partitions=4)
    workers = [kh.start_worker(envs[0], logs[0]), kh.start_worker(envs[1], logs[1])]
    try:
        for log in logs:
            _wait_for_log(log, "Worker]: Ready", timeout=90)
        time.sleep(3.0)  # let the group settle with both members before input arrives
        lines = embedded_result.trace.read_bytes().splitlines(keepends=True)
        halves = [tmp_path / "first.ndjson", tmp_path / "second.ndjson"]
        halves[0].write_bytes(b"".join(lines[: len(lines) // 2]))
        halves[1].write_bytes(b"".join(lines[len(lines) // 2 :]))
        total = kh.publish_file(kafka_bootstrap, topic_prefix, halves[0], partitions=4)
        _wait_for_progress(logs[0], 1, timeout=60)
        _wait_for_progress(logs[1], 1, timeout=60)
        assert kh.stop_worker(workers[0]) == 0, kh.tail(logs[0])
        total += kh.publish_file(kafka_bootstrap, topic_prefix, halves[1], partitions=4)
        kh.wait_caught_up(kafka_bootstrap, topic_prefix, timeout=120)
    finally:
        for proc, log in zip(workers, logs, strict=True):
            if proc.poll() is None:
                assert kh.stop_worker(proc) == 0, kh.tail(log)
    texts = [kh.tail(log, 10**7) for log in logs]
    assert "Traceback" not in "".join(texts), "".join(texts)[-3000:]
    adopted = [re.findall(r"adopted (\S+/\d+): offset (-?\d+)", text) for text in texts]
    of_a = {name for name, _ in adopted[0]}
    moved = {name for name, offset in adopted[1] if int(offset) >= 0 and name in of_a}
    assert moved, "no partition of A moved to B with its stored offset"
    kh.assert_same(embedded_result.tables, kh.read_tables(chdb_server, database))
    assert total > 0
