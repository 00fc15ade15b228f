"""End-to-end latency: WCS hook -> ingest (ack=broker) -> Kafka -> Faust worker -> ClickHouse.

There is no ClickHouse server here and embedded chDB has one owner process (the worker), so
"row visible in ClickHouse" cannot be queried while the worker runs. Two bounds instead,
for probe hooks (``call`` with a fresh callId, ``--probe-rate``/s, while the session mix of
bench/run_mix.py runs open loop at ``--rate`` req/s as background load):

* lower bound, *row produced*: the calls row of the probe appears in ``<prefix>rows.calls``
  (record timestamp = the worker's send time, minus the wall time just before the POST);
  the sink agent reads that topic and inserts into chDB next.
* upper bound, *row committed*: the worker's consumer group committed an offset past that
  row record (polled every ``--commit-poll`` s). The sink acks a row only after its insert
  returned, and Faust commits acked offsets every 1 s, so the row was visible before this.

Usage: .venv/bin/python bench/e2e_latency_bench.py [--probes 200] [--rate 300]
A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvloop
from ingest_bench import _free_port, _wait_ready
from kafka_common import ROOT, broker, cli_process, fresh_prefix
from run_load import open_loop


@dataclass
class Probe:
    sent_ms: float  # wall clock just before the POST
    answer_ms: float = -1.0
    produced_ms: float = -1.0  # rows.calls record timestamp - sent_ms
    arrived_ms: float = -1.0  # when this process read the row - sent_ms
    where: tuple[int, int] = (-1, -1)  # (partition, offset) of the row record
    committed_ms: float = -1.0


@dataclass
class State:
    probes: dict[str, Probe] = field(default_factory=dict)
    expected: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)  # every expected probe committed


def _now_ms() -> float:
    return time.time() * 1000


async def post_call(port: int, call_id: str) -> Probe:
    body = orjson.dumps(
        {
            "nodeId": "e2e-node",
            "appKey": "defaultApp",
            "sessionId": f"sess-{call_id}",
            "callId": call_id,
            "caller": "1001",
            "callee": "1002",
            "incoming": False,
        }
    )
    head = (
        f"POST /wcs/call HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    probe = Probe(_now_ms())
    writer.write(head + body)
    status = await reader.readline()
    await reader.read()
    probe.answer_ms = _now_ms() - probe.sent_ms
    writer.close()
    if b" 200 " not in status:
        raise SystemExit(f"probe answered {status!r}")
    return probe


async def read_rows(bootstrap: str, topic: str, state: State, ready: asyncio.Event) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        while not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in parts])
        await consumer.seek_to_end()
        ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            now = _now_ms()
            for tp, records in batches.items():
                for record in records:
                    _match(state, tp.partition, record, now)
    finally:
        await consumer.stop()


def _match(state: State, partition: int, record: Any, now: float) -> None:
    probe = state.probes.get(orjson.loads(record.value).get("call_id", ""))
    if probe is not None and probe.produced_ms < 0:
        probe.produced_ms = record.timestamp - probe.sent_ms
        probe.arrived_ms = now - probe.sent_ms
        probe.where = (partition, record.offset)


async def poll_commits(bootstrap: str, group: str, topic: str, state: State, every: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:
            try:
                offsets = await admin.list_consumer_group_offsets(group)
            except Exception:  # the group's coordinator is not there yet
                await asyncio.sleep(every)
                continue
            now = _now_ms()
            done = {tp.partition: m.offset for tp, m in offsets.items() if tp.topic == topic}
            for probe in state.probes.values():
                partition, offset = probe.where
                if probe.committed_ms < 0 and offset >= 0 and done.get(partition, -1) > offset:
                    probe.committed_ms = now - probe.sent_ms
            if len(state.probes) >= state.expected and all(
                p.committed_ms >= 0 for p in state.probes.values()
            ):
                state.done.set()
            await asyncio.sleep(every)
    finally:
        await admin.close()


async def measure(args: argparse.Namespace, bootstrap: str, port: int, prefix: str) -> State:
    state, ready = State(), asyncio.Event()
    topic, group = f"{prefix}rows.calls", f"{prefix}wcs-analytics"
    tasks = [
        asyncio.create_task(read_rows(bootstrap, topic, state, ready)),
        asyncio.create_task(poll_commits(bootstrap, group, topic, state, args.commit_poll)),
    ]
    await asyncio.wait_for(ready.wait(), 60)
    await _warm_up(port, state)
    load = argparse.Namespace(
        sustain=int(args.probes / args.probe_rate) + 2, gen_connections=16, slots=500
    )
    state.expected = args.probes
    state.done.clear()  # set by the warm-up probe alone
    background = asyncio.create_task(open_loop(port, args.rate, load)) if args.rate else None
    for i in range(args.probes):
        call_id = f"e2e-{prefix}{i}"
        state.probes[call_id] = await post_call(port, call_id)
        await asyncio.sleep(1 / args.probe_rate)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.done.wait(), args.settle)
    if background is not None:
        stats = await background
        args.load_note = (
            f"background: {stats.sent:,} mix hooks sent at {args.rate} req/s, "
            f"{stats.statuses.get(200, 0):,} answered 200"
        )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return state


async def _warm_up(port: int, state: State) -> None:
    """One probe until its row is committed (worker assigned, sink connected), then forget it."""
    started = time.monotonic()
    state.probes["warm-up"] = await post_call(port, "warm-up")
    while state.probes["warm-up"].committed_ms < 0:
        if time.monotonic() - started > 120:
            raise SystemExit("the warm-up probe's row was not committed within 120 s")
        await asyncio.sleep(0.1)
    del state.probes["warm-up"]


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else -1.0


def report(args: argparse.Namespace, state: State, when: str, load: str) -> str:
    probes = list(state.probes.values())
    rows = [
        ("hook answered (ack=broker)", [p.answer_ms for p in probes]),
        ("row produced to rows.calls (lower bound)", [p.produced_ms for p in probes]),
        ("row read back by this process", [p.arrived_ms for p in probes]),
        ("row committed by the sink (upper bound)", [p.committed_ms for p in probes]),
    ]
    lines = [
        f"# End-to-end latency (started {when})",
        "",
        f"{os.cpu_count()} CPUs; `uptime` before: `{load}`. `wcs-analytics ingest --kafka "
        "--ack broker` + one `wcs-analytics worker --worker-clock wall` (embedded chDB, "
        f"batch interval {args.batch_interval_ms} ms, commit interval 1 s), local single-node "
        f"KRaft broker. {args.probes} `call` probes at {args.probe_rate}/s, each a fresh "
        f"callId; {getattr(args, 'load_note', 'no background load')}. Commit offsets polled "
        f"every {args.commit_poll} s. Milliseconds from just before the POST.",
        "",
        "| stage | probes seen | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in rows:
        seen = [v for v in values if v >= 0]
        top = max(seen) if seen else -1.0
        lines.append(
            f"| {name} | {len(seen)}/{len(values)} | {_pct(seen, 50):.1f} | {_pct(seen, 95):.1f} "
            f"| {top:.1f} |"
        )
    return "\n".join(
        [
            *lines,
            "",
            "A row becomes visible in ClickHouse between the two bounds: the sink inserts it "
            "after reading it from rows.calls (batching up to the batch interval) and acks it "
            "after the insert; the commit follows within the 1 s commit interval.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="use this broker (default: start one)")
    parser.add_argument("--probes", type=int, default=200, help="probe hooks")
    parser.add_argument("--probe-rate", type=float, default=10, help="probe hooks per second")
    parser.add_argument("--rate", type=int, default=300, help="background mix req/s (0: none)")
    parser.add_argument("--batch-interval-ms", type=int, default=1000, help="worker setting")
    parser.add_argument("--commit-poll", type=float, default=0.05, help="seconds")
    parser.add_argument("--settle", type=float, default=30, help="seconds to wait at the end")
    parser.add_argument("--keep", type=Path, help="work dir to keep (logs, chDB) instead of a tmp")
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/e2e_latency.md")
    args = parser.parse_args(argv)
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with (
        tempfile.TemporaryDirectory(prefix="e2e_bench_") as name,
        broker(args.bootstrap) as bs,
    ):
        tmp, prefix, port = args.keep or Path(name), fresh_prefix("e2e"), _free_port()
        tmp.mkdir(parents=True, exist_ok=True)
        common = ["--kafka", bs, "--topic-prefix", prefix, "--log-level", "warning"]
        ingest = ["ingest", *common, "--port", str(port), "--data-dir", str(tmp / "ingest")]
        worker = ["worker", *common, "--clickhouse", f"chdb://{tmp}/chdb", "--data-dir"]
        worker += [str(tmp / "worker"), "--worker-clock", "wall"]
        worker += ["--batch-interval-ms", str(args.batch_interval_ms)]
        with cli_process([*ingest, "--ack", "broker"], tmp / "ingest.log"):
            _wait_ready(f"http://127.0.0.1:{port}/health", timeout=60)
            with cli_process(worker, tmp / "worker.log"):
                runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
                with runner:
                    state = runner.run(measure(args, bs, port, prefix))
    text = report(args, state, when, load)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
