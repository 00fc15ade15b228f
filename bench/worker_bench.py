"""Kafka worker throughput on a real broker: envelopes/s of one and of several workers draining
a backlog, side by side with embedded ``replay`` of the same file.

A simulated trace (``wcs-analytics simulate --out --scale 70``: ~100k envelopes, or ``--trace
FILE``) is published per round to a fresh topic prefix with ``wcs-analytics replay FILE --kafka
--topic-partitions 4`` (batch records); then the workers (``wcs-analytics worker --worker-clock
events``) start, and the consumer group's lag over the input topics is polled every ``--poll``
s. *Caught up* = the first poll with lag 0 (rows and state inserted, offsets committed; the
commit interval is 1 s). Reported per round: seconds from process start to the first commit
(Faust start, topic checks, migrations, the partitions' state loaded), to caught up, and
(envelopes of the records not committed at the first commit) / (caught up - first commit),
the machine's CPU busy share over the same span (/proc/stat: every process -- workers,
broker, ClickHouse server -- so a second worker cannot scale on a machine one worker already
keeps busy) and the workers' own CPU seconds. After SIGTERM the distinct ``events`` ids must
equal the envelopes published. Median of ``--runs`` rounds, alternating.

``--sink chdb`` (default): each round's worker writes to an embedded chDB of its own (one worker
only: chDB has one owner process). ``--sink server``: every worker of a round writes to one test
ClickHouse server (``tests/chdb_server.py``: the real engine behind the HTTP interface), which
several workers need -- a moving partition finds its state there. ``--workers 1,2`` alternates
rounds of one and two workers (use ``--sink server``) and reports the scale-out ratio.
``--with-replay`` also runs ``wcs-analytics replay FILE`` into a fresh chDB each round, rated by
the seconds it reports for its loop: the embedded path on the same file, same engine.

``--record-envelopes N`` publishes at most N envelopes per record: live ingest packs what
arrives for a partition while its previous record is in flight, so at a low rate per partition
a backlog left by an outage holds about one envelope per record, not the ~13 of ``replay``.

Usage: .venv/bin/python bench/worker_bench.py [--runs 3] [--scale 70] [--trace FILE]
       [--workers 1,2] [--sink chdb|server] [--with-replay] [--record-envelopes N]
A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import compiled
import kafka_common
from kafka_common import ROOT, broker, cli_process, fresh_prefix, group_lag, stop, topics_with
from machine import busy_share, cpu_times
from report import publish

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from events.topics import input_topics

SINKS = {"server": "one test ClickHouse server (tests/chdb_server.py)", "chdb": "embedded chDB"}
PUBLISHED = re.compile(r"published in (\d+) records")


@dataclass(frozen=True)
class Round:
    index: int
    workers: int
    envelopes: int
    publish_s: float
    first_commit_s: float
    caught_up_s: float
    stop_s: float
    exit_status: int
    events_rows: int
    replay_s: float = 0.0  # wcs-analytics replay of the same file (0: not run)
    left: float = 1.0  # share of the input records not committed yet at the first commit
    busy: float = 0.0  # share of the machine's CPU time busy from the first commit to caught up
    worker_cpu_s: float = 0.0  # CPU seconds the workers used until caught up (all threads)
    records: int = 0  # Kafka records the envelopes were published in (0: not reported)

    @property
    def rate(self) -> float:
        """Envelopes of the records still uncommitted at the first commit, per second from
        then to caught up (records hold ~equal numbers of envelopes: replay --kafka fills them)."""
        return self.envelopes * self.left / max(self.caught_up_s - self.first_commit_s, 1e-9)

    @property
    def rate_total(self) -> float:
        return self.envelopes / self.caught_up_s


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process, all threads (0 when unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lag_topics(bootstrap: str, prefix: str) -> list[str]:
    """The input topics (the workers' only input)."""
    topics = asyncio.run(topics_with(bootstrap, prefix))
    return sorted(set(topics) & set(input_topics(prefix)))


def replay_round(trace: Path, work: Path) -> float:
    """Seconds ``wcs-analytics replay --jobs 1`` (one process, as one worker is) reports for
    its loop into a fresh chDB."""
    cmd = [
        kafka_common.CLI,
        "replay",
        str(trace),
        "--data-dir",
        str(work),
        "--jobs",
        "1",
        "--log-level",
        "warning",
    ]
    done = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    found = re.search(r"in ([\d.]+)s,", done.stdout)
    if found is None:
        raise SystemExit(f"replay printed no time: {done.stdout}")
    return float(found.group(1))


def one_round(
    args: argparse.Namespace,
    bootstrap: str,
    trace: Path,
    work: Path,
    i: int,
    workers: int,
    server: str | None,
) -> Round:
    prefix = fresh_prefix(f"worker{i}")
    work.mkdir(parents=True)
    envelopes = sum(1 for line in trace.read_bytes().splitlines() if line.strip())
    cmd = [kafka_common.CLI, "replay", str(trace), "--kafka", bootstrap, "--topic-prefix", prefix]
    cmd += ["--topic-partitions", str(args.partitions), "--log-level", "warning"]
    if args.record_envelopes:
        cmd += ["--kafka-batch-max-envelopes", str(args.record_envelopes)]
    started = time.monotonic()
    published = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    publish_s = time.monotonic() - started
    found = PUBLISHED.search(published.stderr + published.stdout)
    records = int(found.group(1)) if found else 0
    dirs = [work / f"w{n}" for n in range(workers)]
    group = f"{prefix}wcs-analytics"
    database = f"bench{i}"
    dsns = [server or f"chdb://{d}/chdb" for d in dirs]
    with contextlib.ExitStack() as stack:
        procs = []
        for d, dsn in zip(dirs, dsns, strict=True):
            d.mkdir()
            flags = ["worker", "--kafka", bootstrap, "--topic-prefix", prefix]
            flags += ["--clickhouse", dsn, "--database", database, "--data-dir", str(d)]
            flags += ["--topic-partitions", str(args.partitions)]
            flags += ["--worker-clock", "events", "--log-level", args.worker_log_level]
            procs.append(stack.enter_context(cli_process(flags, d / "worker.log")))
        started = time.monotonic()
        busy0, total0 = cpu_times()
        first, lag, left = 0.0, -1, 1.0
        while lag != 0:
            if (
                any(p.poll() is not None for p in procs)
                or time.monotonic() - started > args.timeout
            ):
                raise SystemExit(
                    f"a worker exited or timed out (lag {lag}); see {work}/w*/worker.log"
                )
            time.sleep(args.poll)
            try:
                lag, done = asyncio.run(group_lag(bootstrap, group, lag_topics(bootstrap, prefix)))
            except Exception:  # group coordinator not there yet
                lag = -1
                continue
            if not first and done > 0:
                first = time.monotonic() - started
                left = lag / (lag + done)  # share of the records not committed yet
                busy0, total0 = cpu_times()
        caught_up = time.monotonic() - started
        busy1, total1 = cpu_times()
        busy = busy_share(busy0, total0, busy1, total1)
        worker_cpu = sum(process_cpu_s(p.pid) for p in procs)
        t_stop = time.monotonic()
        statuses = [stop(p, timeout=120) for p in procs]
        stop_s = time.monotonic() - t_stop
    ids: set[str] = set()
    for dsn in sorted(set(dsns)):
        ids |= _event_ids(dsn, database)
    status = max(statuses, key=abs)
    replay_s = replay_round(trace, work / "replay") if args.with_replay else 0.0
    return Round(
        i, workers, envelopes, publish_s, first, caught_up, stop_s, status, len(ids), replay_s,
        left, busy, worker_cpu, records,
    )  # fmt: skip


def _event_ids(dsn: str, database: str) -> set[str]:
    sql = f"SELECT DISTINCT id FROM {database}.events"
    cmd = [
        kafka_common.CLI,
        "query",
        "--clickhouse",
        dsn,
        "--log-level",
        "warning",
        "--format",
        "jsonl",
        sql,
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return {json.loads(line)["id"] for line in done.stdout.splitlines() if line.strip()}


def _packing(args: argparse.Namespace) -> str:
    if args.record_envelopes:
        n = args.record_envelopes
        return f"records of at most {n} envelope{'s' if n > 1 else ''} each"
    return "batch records as replay packs them"


def report(args: argparse.Namespace, rounds: list[Round], when: str, load: str) -> str:
    lines = [
        f"# Kafka worker benchmark (started {when})",
        "",
        f"{os.cpu_count()} CPUs; `uptime` before: `{load}`. `wcs-analytics worker "
        f"--worker-clock events` processes in one consumer group writing to "
        f"{SINKS[args.sink]}, "
        f"{args.partitions} partitions per topic, local single-node KRaft broker, fresh "
        "topic prefix and database per round; the trace is published completely "
        f"(`replay --kafka`, {_packing(args)}) before the workers start.",
        "",
        "| round | workers | envelopes | records | publish s | first commit s | caught up s "
        "| envelopes/s (after first commit) | envelopes/s (from start) | machine CPU busy "
        "| worker CPU s | SIGTERM exit s | exit | events ids |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.index} | {r.workers} | {r.envelopes:,} | {r.records:,} | {r.publish_s:.1f} "
        f"| {r.first_commit_s:.1f} | {r.caught_up_s:.1f} | {r.rate:,.0f} | {r.rate_total:,.0f} "
        f"| {r.busy:.0%} | {r.worker_cpu_s:.1f} "
        f"| {r.stop_s:.1f} | {r.exit_status} | {r.events_rows:,} |"
        for r in rounds
    ]
    lines.append("")
    medians = {}
    for n in sorted({r.workers for r in rounds}):
        mine = [r for r in rounds if r.workers == n]
        medians[n] = statistics.median(r.rate for r in mine)
        med_total = statistics.median(r.rate_total for r in mine)
        med_up = statistics.median(r.caught_up_s for r in mine)
        lines.append(
            f"**{n} worker(s), median: {medians[n]:,.0f} envelopes/s after the first commit, "
            f"{med_total:,.0f} envelopes/s from process start ({med_up:.1f} s to caught up)**"
        )
        lines.append("")
    replays = [r.replay_s for r in rounds if r.replay_s]
    if replays:
        replay_rate = rounds[0].envelopes / statistics.median(replays)
        one_worker = medians.get(1)
        ratio = f"; one worker / replay: **{one_worker / replay_rate:.2f}x**" if one_worker else ""
        lines += [
            f"`wcs-analytics replay` of the same file (embedded chDB), median: "
            f"{replay_rate:,.0f} envelopes/s{ratio}",
            "",
        ]
    if len(medians) > 1:
        one, most = min(medians), max(medians)
        lines += [
            f"**scale-out {most} vs {one} worker(s): {medians[most] / medians[one]:.2f}x**",
            "",
        ]
    ok = all(r.events_rows == r.envelopes and r.exit_status == 0 for r in rounds)
    lines += [
        f"distinct `events` ids == envelopes published and exit 0 in every round: **{ok}**",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="use this broker (default: start one)")
    parser.add_argument("--runs", type=int, default=3, help="fresh rounds per worker count")
    parser.add_argument("--workers", default="1", help="worker counts to alternate, e.g. 1,2")
    parser.add_argument("--scale", type=int, default=70, help="wcs-analytics simulate --scale")
    parser.add_argument("--sink", choices=("chdb", "server"), default="chdb")
    parser.add_argument("--with-replay", action="store_true", help="embedded replay side by side")
    parser.add_argument("--trace", type=Path, help="an existing envelope NDJSON instead")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument(
        "--record-envelopes",
        type=int,
        help="at most this many envelopes per Kafka record (replay --kafka-batch-max-envelopes): "
        "1 is the backlog live ingest leaves at a low rate per partition",
    )
    parser.add_argument(
        "--worker-log-level", default="warning", help="info: each flush and its insert waits"
    )
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between lag polls")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per round at most")
    parser.add_argument(
        "--compiled", action="store_true", help="run the wheel as pip install . builds it (mypyc)"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/worker.md")
    args = parser.parse_args(argv)
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with contextlib.ExitStack() as stack:
        name = stack.enter_context(tempfile.TemporaryDirectory(prefix="worker_bench_"))
        bs = stack.enter_context(broker(args.bootstrap))
        tmp = Path(name)
        if args.compiled:
            kafka_common.use_cli(compiled.build(tmp)[1])
        server = None
        if args.sink == "server":  # a test module (not type-checked): loaded by name
            server_cls = importlib.import_module("tests.chdb_server").ChdbServer
            server = stack.enter_context(server_cls(tmp / "server")).dsn
        trace = args.trace or tmp / "trace.ndjson"
        if args.trace is None:
            cmd = [kafka_common.CLI, "simulate", "--out", str(trace), "--scale", str(args.scale)]
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        rounds: list[Round] = []
        counts = [int(n) for n in args.workers.split(",")]
        for _ in range(args.runs):
            for n in counts:  # alternated, so drift in machine load hits every count alike
                i = len(rounds) + 1
                rounds.append(one_round(args, bs, trace, tmp / f"round{i}", i, n, server))
                print(
                    f"round {i} ({n} workers): {rounds[-1].rate:,.0f} envelopes/s", file=sys.stderr
                )
    text = report(args, rounds, when, load)
    publish(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
