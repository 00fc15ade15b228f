"""`wcs-analytics ingest --kafka` (ack=broker, ack=buffer) vs the bare ASGI echo, under wrk.

For each ``--connections`` value (32,128) the three targets are alternated (echo, broker,
buffer, echo, ...) ``--runs`` times with the 16-hook session mix of bench/run_mix.py. Each
ingest mode publishes to its own fresh topic prefix on a real broker (``kafka.sh`` on a
free port pair unless ``--bootstrap``); after the load both ingests get SIGTERM (flush)
and the records in their family topics (end offsets) are compared with the 200 answers
wrk counted (wrk does not count answers in flight when a run ends: up to ``-c`` per run)
and with the ingest's own ``wcs_hooks_total`` (read before SIGTERM).

Usage: .venv/bin/python bench/kafka_ingest_bench.py [--runs 3] [--connections 32,128]
A script, not a test: numbers are written down, never asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from ingest_bench import free_port, run_wrk, uvicorn_server, wait_ready
from kafka_common import ROOT, broker, cli_process, fresh_prefix, record_counts, stop
from report import Run, medians, parse_wrk, publish, runs_table, stats_cells, wrk_requests
from run_mix import MIX, lua_mix

MODES = ("broker", "buffer")


def _hooks_ok(base: str) -> int:
    """Sum of ``wcs_hooks_total{outcome="ok"...}`` on the ingest's /metrics."""
    with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = re.findall(r'^wcs_hooks_total\{[^}]*outcome="(\w+)"\} (\d+)', text, re.M)
    return sum(int(n) for outcome, n in found if outcome == "ok")


def measure(args: argparse.Namespace, tmp: Path, bootstrap: str) -> tuple[list[Run], list[str]]:
    runs: list[Run] = []
    answered: dict[str, int] = dict.fromkeys(MODES, 0)
    prefixes = {mode: fresh_prefix(f"ingest-{mode}") for mode in MODES}
    with ExitStack() as stack:
        bases = {"bare echo": stack.enter_context(uvicorn_server("echo_app"))}
        procs = {}
        for mode in MODES:
            port = free_port()
            cmd = ["ingest", "--kafka", bootstrap, "--topic-prefix", prefixes[mode]]
            cmd += ["--port", str(port), "--ack", mode, "--data-dir", str(tmp / mode)]
            cmd += ["--log-level", "warning"]
            procs[mode] = stack.enter_context(cli_process(cmd, tmp / f"ingest-{mode}.log"))
            bases[f"ack={mode}"] = f"http://127.0.0.1:{port}"
            wait_ready(bases[f"ack={mode}"] + "/health", timeout=60)
        for conns in args.connections:
            args.conns = conns
            for target, base in bases.items():
                script = tmp / f"warm-{conns}-{target[-6:]}.lua"
                script.write_text(lua_mix(f"w{conns}{target[-6:]}", args.slots))
                if args.warmup:
                    out = run_wrk(_wrk_args(args), str(script), base + "/wcs/", args.warmup)
                    if target != "bare echo":
                        answered[target[4:]] += wrk_requests(out)
            for index in range(1, args.runs + 1):
                for target, base in bases.items():
                    script = tmp / f"mix-{conns}-{index}-{target[-6:]}.lua"
                    script.write_text(lua_mix(f"c{conns}r{index}{target[-6:]}", args.slots))
                    out = run_wrk(_wrk_args(args), str(script), base + "/wcs/", args.duration)
                    runs.append(parse_wrk(out, f"{target} c{conns}", index))
                    if target != "bare echo":
                        answered[target[4:]] += wrk_requests(out)
                    print(
                        f"c{conns} run {index} {target}: {runs[-1].rps:,.0f} req/s", file=sys.stderr
                    )
        metrics = {mode: _hooks_ok(bases[f"ack={mode}"]) for mode in MODES}
        exits = {mode: stop(procs[mode]) for mode in MODES}
    from events.topics import input_topics

    notes = []
    for mode in MODES:
        counts = record_counts(bootstrap, input_topics(prefixes[mode]))
        stored = sum(counts.values())
        notes.append(
            f"- ack={mode}: {stored:,} records in `{prefixes[mode]}<family>` topics; "
            f'ingest /metrics `wcs_hooks_total{{outcome="ok"}}` {metrics[mode]:,}; wrk '
            f"counted {answered[mode]:,} answers incl. warm-up (in flight at run ends not "
            f"counted, up to -c per run); exit status {exits[mode]}; records - ok answers: "
            f"**{stored - metrics[mode]:+,}** (a hook whose client went away after its envelope "
            "was handed to the producer, e.g. in flight when a wrk run ends, can be published but "
            "not counted ok; a negative difference would be a loss)"
        )
    return runs, notes


def _wrk_args(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(threads=args.threads, connections=args.conns)


def report(args: argparse.Namespace, runs: list[Run], notes: list[str]) -> str:
    load = os.getloadavg()
    lines = [
        f"# Kafka ingest benchmark ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        "",
        f"{os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end; "
        f"wrk -t{args.threads} -d{args.duration}s --latency, {len(MIX)}-hook session mix over "
        f"{args.slots} slots (bench/run_mix.py); targets alternated; `wcs-analytics ingest "
        "--kafka` (default linger, idempotent producer, acks=all) on a local single-node "
        "KRaft broker vs the bare uvicorn+orjson echo. wrk, broker and server share the CPUs.",
        "",
        *runs_table(runs),
        "",
        "| -c | target | median req/s | median p50 ms | median p99 ms | errors "
        "| req/s vs echo | p50 vs echo | p99 vs echo |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for conns in args.connections:
        echo = medians(runs, f"bare echo c{conns}")
        for target in ("bare echo", *(f"ack={m}" for m in MODES)):
            med = medians(runs, f"{target} c{conns}")
            errors = sum(r.errors for r in runs if r.target == f"{target} c{conns}")
            ratios = " | ".join(f"{m / e:.2f}x" for m, e in zip(med, echo, strict=True))
            lines.append(f"| {conns} | {target} | {stats_cells(*med)} | {errors} | {ratios} |")
    return "\n".join([*lines, "", "Records in Kafka after SIGTERM:", "", *notes, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="use this broker (default: start one)")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per target and -c")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded seconds per target")
    parser.add_argument("--connections", default="32,128", help="wrk -c values")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument("--slots", type=int, default=500, help="sessions in progress at once")
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/kafka_ingest.md")
    args = parser.parse_args(argv)
    args.connections = [int(c) for c in args.connections.split(",")]
    if shutil.which("wrk") is None:
        print("wrk not found; install with: apt-get install -y wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kafka_ingest_") as name, broker(args.bootstrap) as bs:
        text = report(args, *measure(args, Path(name), bs))
    publish(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
