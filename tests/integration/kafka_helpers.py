"""Helpers for the Kafka worker tests: publish a trace, run/stop a worker, read tables.

The worker and the queries run as subprocesses (chDB allows one data path per
process, and the pytest process already owns the session's path).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from events.tables import OUTPUT_TABLES as TABLES

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def cli(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [PY, "-m", "wcs_analytics.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def publish_file(
    bootstrap: str, prefix: str, path: Path, partitions: int, per_record: int = 500
) -> int:
    """Publish an envelope NDJSON to the family topics with the real CLI:
    ``wcs-analytics replay FILE --kafka`` (key = envelope key, file order, received_at kept),
    at most ``per_record`` envelopes per record."""
    out = cli(
        "replay",
        str(path),
        "--kafka",
        bootstrap,
        "--topic-prefix",
        prefix,
        "--topic-partitions",
        str(partitions),
        "--kafka-batch-max-envelopes",
        str(per_record),
    )
    assert "0 rejected" in out, out
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


def ensure_worker_topics(bootstrap: str, prefix: str, partitions: int) -> None:
    """Create every family topic up front (so a worker subscribes to all of them at once)."""
    from events.topics import input_topics
    from wcs_analytics.topics import ensure_topics

    asyncio.run(
        ensure_topics(
            bootstrap, input_topics(prefix), partitions=partitions, replication=1, create=True
        )
    )


def dsn_of(data_dir: Path) -> str:
    return f"chdb://{data_dir.resolve()}/chdb"


def worker_env(bootstrap: str, prefix: str, data_dir: Path, partitions: int) -> dict[str, str]:
    return {
        **os.environ,
        "WCS_KAFKA": bootstrap,
        "WCS_CLICKHOUSE": dsn_of(data_dir),
        "WCS_TOPIC_PREFIX": prefix,
        "WCS_TOPIC_PARTITIONS": str(partitions),
        "WCS_DATA_DIR": str(data_dir),
        "WCS_BATCH_INTERVAL_MS": "300",
    }


def start_worker(
    env: dict[str, str], log: Path, module: str = "wcs_analytics.cli"
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [PY, "-m", module, "worker", "--worker-clock", "events"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise


async def _lag(bootstrap: str, group: str, prefix: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.structs import TopicPartition

    from events.topics import alerts_topic

    outputs = {alerts_topic(prefix)}  # produced for other consumers, never read by the group
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix) and t not in outputs]
        committed = await admin.list_consumer_group_offsets(group)
        described = await admin.describe_topics(topics)
        tps = [
            TopicPartition(d["topic"], p["partition"])
            for d in described
            if not d["topic"].endswith("-changelog") and "dead-letter" not in d["topic"]
            for p in d["partitions"]
        ]
    finally:
        await admin.close()
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    lag = 0
    for tp, end in ends.items():
        meta = committed.get(tp)
        lag += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
    return lag


async def _committed_input(bootstrap: str, group: str, prefix: str) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    from events.topics import input_topics

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    inputs = set(input_topics(prefix))
    return {
        f"{tp.topic}[{tp.partition}]": m.offset
        for tp, m in sorted(committed.items())
        if tp.topic in inputs and m.offset > 0
    }


def committed_input(bootstrap: str, prefix: str) -> dict[str, int]:
    """Committed offset per family topic partition of the worker group (0s left out)."""
    return asyncio.run(_committed_input(bootstrap, f"{prefix}wcs-analytics", prefix))


def wait_caught_up(bootstrap: str, prefix: str, timeout: float, settle: int = 2) -> float:
    """Wait until the worker group committed every record of every topic (no ticks
    with ``--worker-clock events``), ``settle`` polls in a row."""
    group = f"{prefix}wcs-analytics"
    started = time.monotonic()
    calm, lag = 0, -1
    while time.monotonic() - started < timeout:
        try:
            lag = asyncio.run(_lag(bootstrap, group, prefix))
        except Exception:  # group coordinator not there yet
            lag = -1
        calm = calm + 1 if lag == 0 else 0
        if calm >= settle:
            return time.monotonic() - started
        time.sleep(1.0)
    raise AssertionError(f"worker did not catch up within {timeout}s (lag {lag})")


def read_tables(dsn: str, database: str = "wcs") -> dict[str, list[dict[str, Any]]]:
    """Every output table with FINAL, without ``version``, sorted (chDB in a subprocess)."""
    result: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        out = cli(
            "query",
            "--clickhouse",
            dsn,
            "--format",
            "jsonl",
            f"SELECT * EXCEPT version FROM {database}.{name} FINAL",
        )
        rows = [orjson.loads(line) for line in out.splitlines() if line.strip()]
        result[name] = sorted(rows, key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))
    return result


def read_merged(dsns: list[str], database: str = "wcs") -> dict[str, list[dict[str, Any]]]:
    """Tables written by several sinks (one chDB each): per table key, the row with the
    highest version wins, as ReplacingMergeTree would on one server; ``version`` dropped."""
    result: dict[str, list[dict[str, Any]]] = {}
    for name, table in TABLES.items():
        best: dict[bytes, dict[str, Any]] = {}
        for dsn in dsns:
            sql = f"SELECT * FROM {database}.{name} FINAL"
            out = cli("query", "--clickhouse", dsn, "--format", "jsonl", sql)
            for line in out.splitlines():
                row = orjson.loads(line)
                key = orjson.dumps([row[c] for c in table.order_by])
                if key not in best or row.get("version", 0) > best[key].get("version", 0):
                    best[key] = row
        rows = [{k: v for k, v in row.items() if k != "version"} for row in best.values()]
        result[name] = sorted(rows, key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))
    return result


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def assert_same(
    want: dict[str, list[dict[str, Any]]], got: dict[str, list[dict[str, Any]]]
) -> None:
    for table in TABLES:
        missing = [r for r in want[table] if r not in got[table]]
        extra = [r for r in got[table] if r not in want[table]]
        assert not missing and not extra, (
            f"{table}: {len(missing)} missing, {len(extra)} extra; "
            f"e.g. missing {missing[:2]} extra {extra[:2]}"
        )
    assert sum(len(rows) for rows in want.values()) > 5000
    assert sum(b'"billingId":' + BIG_INT in row["body"].encode() for row in got["events"]) == 1


BIG_INT = b"123456789012345678901234567890"


def big_int_line(line: bytes) -> bytes:
    """A copy of the envelope ``line`` (new id) whose body also holds an integer beyond 64
    bits: every path must store its digits exactly (``events.body``)."""
    envelope = orjson.loads(line)
    envelope["id"] += "-big"
    envelope["body"]["billingId"] = "@big@"
    return orjson.dumps(envelope).replace(b'"@big@"', BIG_INT) + b"\n"


def rekeyed(lines: list[bytes], partitions: int = 4) -> list[bytes]:
    """``lines`` with a copy (new id) of the first ESTABLISHED call status right after it,
    whose envelope ``key`` is not the call's and hashes to another partition (a recorded
    file that was edited or written by another tool). Embedded replay applies it to the
    call by its body: a duplicate, nothing changes; a worker must see it in the call's
    partition too, or another partition counts the call's status a second time."""
    from ingest.kafka_batch import partition_of

    at = next(i for i, line in enumerate(lines)
              if b'"CallStatusEvent"' in line and b'"status":"ESTABLISHED"' in line)  # fmt: skip
    envelope = orjson.loads(lines[at])
    home = partition_of(envelope["body"]["callId"].encode(), partitions)
    other = next(k for k in (f"not-the-call-{n}" for n in range(99))
                 if partition_of(k.encode(), partitions) != home)  # fmt: skip
    copy = orjson.dumps(dict(envelope, id=envelope["id"] + "-rekeyed", key=other)) + b"\n"
    return [*lines[: at + 1], copy, *lines[at + 1 :]]


def late_block(lines: list[bytes]) -> list[bytes]:
    """``lines`` with a thirtieth of them, taken a fifth into the file, delivered after the
    rest (a node's hooks held up, then sent): their time is behind every partition's clock,
    and their window hits are late for windows already emitted and evaluated."""
    n = len(lines)
    start, end = n // 5, n // 5 + n // 30
    return [*lines[:start], *lines[end:], *lines[start:end]]


@dataclass(frozen=True)
class Embedded:
    trace: Path
    tables: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="session")
def embedded_result(tmp_path_factory: pytest.TempPathFactory) -> Embedded:
    """A simulated trace (all families, retries, reorders) with a re-keyed line, a block
    of lines delivered late and a body integer beyond 64 bits, and its embedded replay."""
    root = tmp_path_factory.mktemp("embedded")
    trace = root / "trace.ndjson"
    cli("simulate", "--out", str(trace), "--seed", "3", "--scale", "3")
    trace.write_bytes(b"".join(late_block(rekeyed(trace.read_bytes().splitlines(keepends=True)))))
    with trace.open("ab") as out:
        out.write(big_int_line(trace.read_bytes().split(b"\n", 1)[0]))
    cli("replay", str(trace), "--data-dir", str(root / "d1"))
    return Embedded(trace, read_tables(dsn_of(root / "d1")))
