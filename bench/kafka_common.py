"""Shared pieces of the Kafka benches: a broker, CLI processes, topic offsets, consumer lag.

``broker(None)`` starts a single-node KRaft broker with ``deploy/kafka/kafka.sh`` on a free
port pair and resets it (stop + delete data) on exit; ``broker("HOST:PORT")`` uses that one.
Offsets are read with aiokafka; the ingest producer is idempotent and not transactional, so
a topic's end offset is the number of records it holds (topics are fresh per prefix).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.kafka_broker import free_port_pair  # noqa: E402  (needs ROOT on sys.path)

CLI = str(ROOT / ".venv/bin/wcs-analytics")  # use_cli() replaces it (--compiled)


def use_cli(cli: str) -> None:
    """Run every CLI process of this bench with ``cli`` (bench/compiled.py's launcher)."""
    global CLI
    CLI = cli


KAFKA_SH = ROOT / "deploy/kafka/kafka.sh"
Popen = subprocess.Popen[bytes]


@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """Yields a bootstrap address: ``bootstrap`` as given, else a broker of our own."""
    if bootstrap:
        yield bootstrap
        return
    env = {**os.environ, "KAFKA_PORT": str(free_port_pair())}
    done = subprocess.run([str(KAFKA_SH), "start"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"kafka.sh start failed: {done.stderr.strip()[-800:]}")
    try:
        yield f"127.0.0.1:{env['KAFKA_PORT']}"
    finally:
        subprocess.run([str(KAFKA_SH), "reset"], env=env, capture_output=True, check=False)


def fresh_prefix(name: str) -> str:
    return f"bench-{name}-{uuid.uuid4().hex[:8]}."


@contextmanager
def cli_process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Popen]:
    """``wcs-analytics ARGS`` with stdout/stderr to ``log``; SIGTERM (then SIGKILL) on exit."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [CLI, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: Popen, timeout: float = 60) -> int:
    """SIGTERM and wait; SIGKILL when it does not exit within ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


async def topics_with(bootstrap: str, prefix: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(prefix))
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """End offset of every partition of ``topics``."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        if not tps:  # metadata not loaded yet for these topics
            await consumer._client.force_metadata_update()
            tps = [
                TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
            ]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): end for tp, end in ends.items()}


async def _count_envelopes(bootstrap: str, topics: list[str]) -> dict[str, int]:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    ends = {
        TopicPartition(t, p): end for (t, p), end in (await end_offsets(bootstrap, topics)).items()
    }
    counts = dict.fromkeys(topics, 0)
    wanted = {tp: end for tp, end in ends.items() if end > 0}
    if not wanted:
        return counts
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        await consumer.seek_to_beginning(*wanted)
        deadline = asyncio.get_running_loop().time() + 600
        while wanted:
            if asyncio.get_running_loop().time() > deadline:
                raise SystemExit(f"reading {sorted(map(str, wanted))} took more than 600 s")
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, messages in batches.items():
                for message in messages:
                    count = dict(message.headers).get("count")
                    counts[tp.topic] += int(count) if count is not None else 1
                if messages and messages[-1].offset + 1 >= wanted.get(tp, 0):
                    wanted.pop(tp, None)
    finally:
        await consumer.stop()
    return counts


def envelope_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Envelopes per topic: the ``count`` header of batch records, 1 for a record without one."""
    return asyncio.run(_count_envelopes(bootstrap, topics))


def record_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Records per topic (sum of end offsets)."""
    ends = asyncio.run(end_offsets(bootstrap, topics))
    counts = dict.fromkeys(topics, 0)
    for (topic, _), end in ends.items():
        counts[topic] += end
    return counts


async def committed(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets (missing partitions: nothing committed)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): m.offset for tp, m in offsets.items() if m.offset >= 0}


async def group_lag(bootstrap: str, group: str, topics: list[str]) -> tuple[int, int]:
    """(sum over ``topics`` of end offset - committed offset, sum of committed offsets)."""
    ends = await end_offsets(bootstrap, topics)
    done = await committed(bootstrap, group)
    lag = sum(end - done.get(tp, 0) for tp, end in ends.items())
    return lag, sum(done.get(tp, 0) for tp in ends)
