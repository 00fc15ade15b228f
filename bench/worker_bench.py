"""Faust worker throughput on a real broker: envelopes/s of one `wcs-analytics worker`.

A simulated trace (``wcs-analytics simulate --out --scale 20``, or ``--trace FILE``) is
published per round to a fresh topic prefix with ``wcs-analytics replay FILE --kafka
--topic-partitions 4``; then one ``wcs-analytics worker --worker-clock events`` (embedded
chDB in a fresh directory) is started and the consumer group's lag (end offset - committed
offset over every ``<prefix>*`` topic except changelogs and the dead letter, i.e. input,
window-hits and row topics, as tests/integration/kafka_helpers.py ``wait_caught_up``) is
polled every ``--poll`` s. *Caught up* = the first poll with lag 0 (rows inserted into chDB
and committed; the commit interval is 1 s). Reported per round: seconds from process start
to the first commit (Faust start, topic checks, chDB migration), to caught up, and
envelopes / (caught up - first commit). After SIGTERM, ``SELECT count() FROM wcs.events``
must equal the envelopes published. Median of ``--runs`` rounds.

Usage: .venv/bin/python bench/worker_bench.py [--runs 3] [--scale 20] [--trace FILE]
A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kafka_common import CLI, ROOT, broker, cli_process, fresh_prefix, group_lag, stop, topics_with
from report import publish


@dataclass(frozen=True)
class Round:
    index: int
    envelopes: int
    publish_s: float
    first_commit_s: float
    caught_up_s: float
    stop_s: float
    exit_status: int
    events_rows: int

    @property
    def rate(self) -> float:
        return self.envelopes / max(self.caught_up_s - self.first_commit_s, 1e-9)

    @property
    def rate_total(self) -> float:
        return self.envelopes / self.caught_up_s


def lag_topics(bootstrap: str, prefix: str) -> list[str]:
    topics = asyncio.run(topics_with(bootstrap, prefix))
    return [t for t in topics if not t.endswith("-changelog") and "dead-letter" not in t]


def one_round(args: argparse.Namespace, bootstrap: str, trace: Path, work: Path, i: int) -> Round:
    prefix = fresh_prefix(f"worker{i}")
    work.mkdir(parents=True)
    envelopes = sum(1 for line in trace.read_bytes().splitlines() if line.strip())
    cmd = [CLI, "replay", str(trace), "--kafka", bootstrap, "--topic-prefix", prefix]
    cmd += ["--topic-partitions", str(args.partitions), "--log-level", "warning"]
    started = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    publish_s = time.monotonic() - started
    dsn = f"chdb://{work}/chdb"
    flags = ["worker", "--kafka", bootstrap, "--topic-prefix", prefix, "--clickhouse", dsn]
    flags += ["--topic-partitions", str(args.partitions), "--data-dir", str(work)]
    flags += ["--worker-clock", "events", "--log-level", "warning"]
    group = f"{prefix}wcs-analytics"
    with cli_process(flags, work / "worker.log") as proc:
        started = time.monotonic()
        first, lag = 0.0, -1
        while lag != 0:
            if proc.poll() is not None or time.monotonic() - started > args.timeout:
                raise SystemExit(f"worker exited or timed out (lag {lag}); see {work}/worker.log")
            time.sleep(args.poll)
            try:
                lag, done = asyncio.run(group_lag(bootstrap, group, lag_topics(bootstrap, prefix)))
            except Exception:  # group coordinator not there yet
                lag = -1
                continue
            if not first and done > 0:
                first = time.monotonic() - started
        caught_up = time.monotonic() - started
        t_stop = time.monotonic()
        status = stop(proc, timeout=120)
        stop_s = time.monotonic() - t_stop
    rows = _count_events(dsn)
    return Round(i, envelopes, publish_s, first, caught_up, stop_s, status, rows)


def _count_events(dsn: str) -> int:
    sql = "SELECT count() FROM wcs.events"
    cmd = [CLI, "query", "--clickhouse", dsn, "--log-level", "warning", sql]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def report(args: argparse.Namespace, rounds: list[Round], when: str, load: str) -> str:
    lines = [
        f"# Faust worker benchmark (started {when})",
        "",
        f"{os.cpu_count()} CPUs; `uptime` before: `{load}`. One `wcs-analytics worker "
        f"--worker-clock events` (embedded chDB), {args.partitions} partitions per topic, "
        "local single-node KRaft broker, fresh topic prefix and chDB dir per round; the trace "
        "is published completely (`replay --kafka`) before the worker starts.",
        "",
        "| round | envelopes | publish s | first commit s | caught up s | envelopes/s "
        "(after first commit) | envelopes/s (from start) | SIGTERM exit s | exit | events rows |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.index} | {r.envelopes:,} | {r.publish_s:.1f} | {r.first_commit_s:.1f} "
        f"| {r.caught_up_s:.1f} | {r.rate:,.0f} | {r.rate_total:,.0f} | {r.stop_s:.1f} "
        f"| {r.exit_status} | {r.events_rows:,} |"
        for r in rounds
    ]
    med = statistics.median(r.rate for r in rounds)
    med_total = statistics.median(r.rate_total for r in rounds)
    med_up = statistics.median(r.caught_up_s for r in rounds)
    ok = all(r.events_rows == r.envelopes and r.exit_status == 0 for r in rounds)
    return "\n".join(
        [
            *lines,
            "",
            f"**median: {med:,.0f} envelopes/s per worker after the first commit, "
            f"{med_total:,.0f} envelopes/s from process start ({med_up:.1f} s to caught up)**",
            "",
            f"`events` rows == envelopes published and exit 0 in every round: **{ok}**",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="use this broker (default: start one)")
    parser.add_argument("--runs", type=int, default=3, help="fresh rounds (median)")
    parser.add_argument("--scale", type=int, default=20, help="wcs-analytics simulate --scale")
    parser.add_argument("--trace", type=Path, help="an existing envelope NDJSON instead")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between lag polls")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per round at most")
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/worker.md")
    args = parser.parse_args(argv)
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="worker_bench_") as name, broker(args.bootstrap) as bs:
        tmp = Path(name)
        trace = args.trace or tmp / "trace.ndjson"
        if args.trace is None:
            cmd = [CLI, "simulate", "--out", str(trace), "--scale", str(args.scale)]
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        rounds = []
        for i in range(1, args.runs + 1):
            rounds.append(one_round(args, bs, trace, tmp / f"round{i}", i))
            print(f"round {i}: {rounds[-1].rate:,.0f} envelopes/s", file=sys.stderr)
    text = report(args, rounds, when, load)
    publish(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
