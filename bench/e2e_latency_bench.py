"""End-to-end latency hook -> row inserted into ClickHouse: Kafka path vs embedded, same run.

Both sinks keep ``sinks.freshness`` (insert returned - ``received_at`` of every ``events``
row). Per rate: Kafka (``ingest --kafka``, one ``worker --worker-clock wall`` on chDB), whose
worker logs ``freshness {..., "counts": [cumulative per bucket]}`` at most every 10 s after a
flush with new rows (tailed; the ingest's hooks ``ok`` are read when a line appears); then
``wcs-analytics run`` (its /metrics has both). Once a first row is in, the session mix of
bench/run_mix.py runs open loop (bench/run_load.py) for ``--warmup`` + ``--duration`` s.
Snapshot A, the measurement start: Kafka, the first line logged after the warm-up (lines
come every ~10.5 s, so up to that much of ``--duration`` is not measured); embedded, the
same time into its load. B: after the load, ticking one hook a second (a line needs a
flush) until the rows reach the hooks ``ok``. B - A: rows, p50/p95/p99 (interpolated in
the buckets), hooks ``ok``.

Usage: .venv/bin/python bench/e2e_latency_bench.py [--rates 200,500] [--duration 30]
A script, not a test: numbers are written down, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvloop
from ingest_bench import free_port, wait_ready
from kafka_common import CLI, ROOT, broker, cli_process, fresh_prefix
from report import publish
from run_load import HOST, LoadStats, Service, http_get, open_loop
from run_mix import MixRequests

from events.histogram import minus
from sinks import freshness

BUCKETS = len(freshness.BOUNDS_S) + 1


@dataclass(frozen=True)
class Snap:
    counts: list[int]  # freshness per-bucket counts since the process started
    hooks: int  # hooks answered ok since the process started
    t: float  # time.monotonic() when taken


Source = Callable[[], Awaitable[Snap]]
Head = tuple[int, str, tuple[float, float, float]]  # rate, path, load average before the step


def hooks_ok(metrics: str) -> int:
    found = re.findall(r'^wcs_hooks_total\{[^}]*outcome="ok"[^}]*\} (\S+)$', metrics, re.M)
    return sum(int(float(v)) for v in found)


def freshness_buckets(metrics: str) -> list[int]:
    """Per-bucket counts from the cumulative ``le`` buckets (zeros while not exposed)."""
    found = re.findall(rf'^{freshness.NAME}_bucket\{{le="[^"]+"\}} (\S+)$', metrics, re.M)
    cumulative = [int(float(v)) for v in found] or [0] * BUCKETS
    return minus(cumulative, [0, *cumulative[:-1]])


async def metrics(port: int) -> str:
    return (await http_get(port, "/metrics"))[1].decode()


async def embedded_snap(port: int) -> Snap:
    text = await metrics(port)
    return Snap(freshness_buckets(text), hooks_ok(text), time.monotonic())


class WorkerCrashed(Exception):
    """A Faust agent of the worker crashed (its numbers would be meaningless)."""


class WorkerLog:
    """The last ``freshness`` line of the worker log, with the ingest's ok count when seen.
    ``snap`` raises WorkerCrashed once the log shows an agent crash."""

    def __init__(self, path: Path, ingest_port: int) -> None:
        self.path, self.port, self.offset = path, ingest_port, 0
        self.last = Snap([0] * BUCKETS, 0, time.monotonic())

    async def snap(self) -> Snap:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        data = data[: data.rfind(b"\n") + 1]  # whole lines only
        self.offset += len(data)
        crashes = re.findall(rb"Crashed reason=(.{,240})", data)
        if crashes:
            raise WorkerCrashed(crashes[0].decode(errors="replace"))
        lines = re.findall(rb"freshness (\{.*\})\s*$", data, re.M)
        if lines:
            counts = orjson.loads(lines[-1])["counts"]
            self.last = Snap(counts, hooks_ok(await metrics(self.port)), time.monotonic())
        return self.last


async def tick(port: int, requests: MixRequests, i: int) -> None:
    """One hook of a separate session mix; waits for the status line only."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(requests(i))
    await reader.readline()
    writer.close()


async def settle(source: Source, port: int, target: int, limit_s: float) -> tuple[Snap, bool]:
    """Snapshot once ``target`` rows were inserted (ticking once a second); False after
    ``limit_s`` seconds."""
    requests, sent = MixRequests(f"tick{port}", 1, f"{HOST}:{port}"), 0
    start = time.monotonic()
    while True:
        snap = await source()
        if sum(snap.counts) >= target or time.monotonic() - start > limit_s:
            return snap, sum(snap.counts) >= target
        if time.monotonic() - start >= sent:
            await tick(port, requests, sent)
            sent += 1
        await asyncio.sleep(0.25)


@dataclass(frozen=True)
class Step:
    rate: int
    path: str
    load_avg: tuple[float, float, float]  # before the step's processes started
    stats: LoadStats  # of the whole load, warm-up included
    a: Snap  # measurement start
    b: Snap  # after the drain
    drained: bool  # B has a row for every hook answered ok
    t0: float  # monotonic time the load started
    t_end: float  # ... and ended (every answer in)

    def summary(self) -> dict[str, Any]:
        return freshness.summary(minus(self.b.counts, self.a.counts))


async def measure(source: Source, port: int, head: Head, start_s: float, args: Any) -> Step:
    """The open-loop mix at ``head``'s rate for warm-up + duration. A: the first snapshot
    taken ``start_s`` s or more into the load (Kafka: the first line logged then); B: drained."""
    _, ready = await settle(source, port, 1, args.drain_timeout)
    if not ready:
        raise SystemExit(f"{head[1]} {head[0]}/s: no row inserted in {args.drain_timeout:.0f} s")
    sustain = args.warmup + args.duration
    load = argparse.Namespace(
        sustain=sustain, gen_connections=args.gen_connections, slots=500, hook=None
    )
    load_task, t0 = asyncio.create_task(open_loop(port, head[0], load)), time.monotonic()
    a = await source()
    while a.t < t0 + start_s and time.monotonic() < t0 + sustain:  # polled: < 0.25 s late
        await asyncio.sleep(0.25)
        a = await source()
    stats = await load_task
    t_end, target = time.monotonic(), hooks_ok(await metrics(port))
    b, drained = await settle(source, port, target, args.drain_timeout)
    return Step(*head, stats, a, b, drained, t0, t_end)


def run(coro: Coroutine[Any, Any, Step]) -> Step:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def kafka_step(bootstrap: str, work: Path, rate: int, args: Any) -> Step:
    port, head = free_port(), (rate, "kafka", os.getloadavg())
    common = ["--kafka", bootstrap, "--topic-prefix", fresh_prefix(f"e2e{rate}")]
    ingest = ["ingest", *common, "--port", str(port), "--ack", args.ack]
    ingest += ["--data-dir", str(work / "ingest"), "--log-level", "warning"]
    worker = ["worker", *common, "--clickhouse", f"chdb://{work}/db", "--log-level", "info"]
    worker += ["--data-dir", str(work / "worker"), "--worker-clock", "wall"]
    with cli_process(ingest, work / "ingest.log"):
        wait_ready(f"http://{HOST}:{port}/health", timeout=60)
        with cli_process(worker, work / "worker.log"):
            source = WorkerLog(work / "worker.log", port).snap
            return run(measure(source, port, head, args.warmup, args))


def kafka_with_retries(bs: str, tmp: Path, rate: int, args: Any, crashes: list[str]) -> Step:
    """``kafka_step``, again from scratch (up to ``--retries`` times) when an agent crashed."""
    for attempt in range(args.retries + 1):
        (tmp / f"kafka-{rate}-{attempt}").mkdir(parents=True)
        try:
            return kafka_step(bs, tmp / f"kafka-{rate}-{attempt}", rate, args)
        except WorkerCrashed as exc:
            crashes.append(f"{rate}/s: `{exc}`")
            print(f"{rate}/s kafka: worker crashed: {exc}", file=sys.stderr)
    raise SystemExit(f"{rate}/s kafka: the worker crashed {args.retries + 1} times")


def embedded_step(work: Path, rate: int, start_s: float, args: Any) -> Step:
    head = (rate, "embedded", os.getloadavg())
    with Service(CLI, work / "data", work / "service.log") as service:
        source = functools.partial(embedded_snap, service.port)
        result = run(measure(source, service.port, head, start_s, args))
        service.stop()
    return result


# ---- report ------------------------------------------------------------------------------------


def _ms(value: object) -> str:
    return "-" if value is None else f"{value:,.1f}"


def table(steps: list[Step]) -> list[str]:
    lines = [
        "| rate hooks/s | path | hooks ok | rows measured | p50 ms | p95 ms | p99 ms |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for s in steps:
        q = s.summary()
        cells = [f"{s.rate:,}", s.path, f"{s.b.hooks - s.a.hooks:,}", f"{q['n']:,}"]
        cells += [_ms(q["p50_ms"]), _ms(q["p95_ms"]), _ms(q["p99_ms"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| rate hooks/s | p50 kafka/embedded | p95 kafka/embedded |", "|---:|---:|---:|"]
    by = {(s.rate, s.path): s.summary() for s in steps}
    for rate in dict.fromkeys(s.rate for s in steps):
        k, e = by.get((rate, "kafka"), {}), by.get((rate, "embedded"), {})
        ratios = [_ratio(k.get(q), e.get(q)) for q in ("p50_ms", "p95_ms")]
        lines.append(f"| {rate:,} | {' | '.join(ratios)} |")
    return lines


def _ratio(kafka: Any, embedded: Any) -> str:
    return f"{kafka / embedded:.1f}x" if kafka is not None and embedded else "-"


def note(s: Step) -> str:
    bad, load = s.stats.answered - s.stats.statuses[200], " ".join(f"{x:.2f}" for x in s.load_avg)
    drained = "drained" if s.drained else "**NOT drained** within the drain timeout"
    return (
        f"- {s.rate:,}/s {s.path}: load average before {load}; generator sent {s.stats.sent:,} "
        f"(warm-up included), {s.stats.statuses[200]:,} answered 200, {bad} other, "
        f"{s.stats.lost} lost; A at {s.a.t - s.t0:.1f} s into the load, which ended at "
        f"{s.t_end - s.t0:.1f} s; B {s.b.t - s.t_end:.1f} s after that, {drained}."
    )


def report(args: Any, steps: list[Step], when: str, argv: list[str], crashes: list[str]) -> str:
    command = shlex.join([".venv/bin/python", "bench/e2e_latency_bench.py", *argv])
    batch = f"{args.batch_interval_ms} ms" if args.batch_interval_ms else "default"
    return "\n".join(
        [
            f"# End-to-end latency: hook -> events row inserted ({when})",
            "",
            f"{os.cpu_count()} CPUs (nproc); local single-node KRaft broker; `{command}`.",
            f"Kafka: `ingest --ack {args.ack}` + one `worker --worker-clock wall` on chDB; "
            f"embedded: `wcs-analytics run`; batch interval: {batch}. Open-loop session mix for "
            f"{args.warmup + args.duration} s per step; measured from A (Kafka: the first "
            f"freshness line of the worker after {args.warmup} s of load; embedded: the same "
            "time into its load) to the end of the load, plus the drain.",
            "",
            *table(steps),
            "",
            *(note(s) for s in steps),
            *(f"- restarted (fresh topics and chDB) after a worker crash: {c}" for c in crashes),
            "",
            "Latency = wall time the ClickHouse insert returned - `received_at` of the events row "
            "(sinks/freshness.py). Quantiles are interpolated inside histogram buckets (bounds "
            "<= 1.5x apart). Rows measured and hooks ok differ: the window is cut at snapshots "
            "(Kafka: at the worker's freshness log lines, at most one per 10 s), rows still in "
            "flight at A are counted as rows but their hooks are not, and B includes the few "
            "extra hooks (1/s) sent after the load so that the worker flushes and logs a line.",
            "",
        ]
    )


# ---- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="use this broker (default: start one)")
    parser.add_argument("--rates", default="200,500", help="open-loop hooks/s, comma-separated")
    parser.add_argument("--duration", type=int, default=30, help="measured seconds per step")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured seconds before")
    parser.add_argument("--ack", default="broker", choices=("broker", "buffer"), help="ingest")
    parser.add_argument("--batch-interval-ms", type=int, help="both paths (default: settings)")
    parser.add_argument("--gen-connections", type=int, default=16, help="open-loop connections")
    parser.add_argument("--retries", type=int, default=2, help="Kafka step after a crash")
    parser.add_argument("--drain-timeout", type=float, default=120, help="seconds")
    parser.add_argument("--keep", type=Path, help="work dir to keep (logs, chDB) instead of a tmp")
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/e2e_latency.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, when = parse_args(argv), time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if args.batch_interval_ms:  # settings read WCS_* from the environment the CLIs inherit
        os.environ["WCS_BATCH_INTERVAL_MS"] = str(args.batch_interval_ms)
    steps: list[Step] = []
    crashes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="e2e_bench_") as name, broker(args.bootstrap) as bs:
        tmp = args.keep or Path(name)
        for rate in (int(r) for r in args.rates.split(",")):
            steps.append(kafka_with_retries(bs, tmp, rate, args, crashes))
            (tmp / f"embedded-{rate}").mkdir()
            start_s = steps[-1].a.t - steps[-1].t0  # the same measurement window as Kafka's
            steps.append(embedded_step(tmp / f"embedded-{rate}", rate, start_s, args))
            for step in steps[-2:]:
                print(f"{rate}/s {step.path}: {step.summary()}", file=sys.stderr)
    publish(report(args, steps, when, argv, crashes), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
