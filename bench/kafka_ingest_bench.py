"""`wcs-analytics ingest --kafka` (ack=broker, ack=buffer) vs the bare ASGI echo, under wrk.

For each ``--connections`` value (32,128) the targets are alternated (echo, broker, buffer,
echo, ...) ``--runs`` times with the 16-hook session mix of bench/run_mix.py. With
``--baseline-src DIR`` (a source tree of an older commit, e.g. ``git archive <commit> | tar
-x -C DIR``) that tree's ingest runs too, in both modes, in the same alternation ("base
ack=..."), so before/after ratios to the echo come from one run. Each ingest publishes to
its own fresh topic prefix on a real broker (``kafka.sh`` on a free port pair unless
``--bootstrap``); after the load every ingest gets SIGTERM (flush), and the Kafka records in
its family topics (end offsets) and the envelopes in them (sum of the ``count`` headers of
batch records, 1 per record without one) are compared with the 200 answers wrk counted
(wrk does not count answers in flight when a run ends: up to ``-c`` per run) and with the
ingest's own ``wcs_hooks_total`` (read before SIGTERM).

Usage: .venv/bin/python bench/kafka_ingest_bench.py [--runs 3] [--connections 32,128]
       [--baseline-src /tmp/base]
A script, not a test: numbers are written down, never asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from ingest_bench import free_port, run_wrk, uvicorn_server, wait_ready
from kafka_common import (
    ROOT,
    broker,
    cli_process,
    envelope_counts,
    fresh_prefix,
    record_counts,
    stop,
)
from report import Run, medians, parse_wrk, publish, runs_table, stats_cells, wrk_requests
from run_mix import MIX, lua_mix

MODES = ("broker", "buffer")


def _hooks_ok(base: str) -> int:
    """Sum of ``wcs_hooks_total{outcome="ok"...}`` on the ingest's /metrics."""
    with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = re.findall(r'^wcs_hooks_total\{[^}]*outcome="(\w+)"\} (\d+)', text, re.M)
    return sum(int(n) for outcome, n in found if outcome == "ok")


def _ingests(args: argparse.Namespace) -> list[tuple[str, str, Path | None]]:
    """(target label, --ack mode, source tree or None for this one)."""
    out: list[tuple[str, str, Path | None]] = [(f"ack={m}", m, None) for m in MODES]
    if args.baseline_src is not None:
        out += [(f"base ack={m}", m, args.baseline_src) for m in MODES]
    return out


def _start_ingest(
    stack: ExitStack, cmd: list[str], log: Path, src: Path | None
) -> subprocess.Popen[bytes]:
    if src is None:
        return stack.enter_context(cli_process(cmd, log))
    env = {**os.environ, "PYTHONPATH": str(src)}  # the older tree's packages, same virtualenv
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wcs_analytics.cli", *cmd],
            cwd=src,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stack.callback(stop, proc)
    return proc


def measure(args: argparse.Namespace, tmp: Path, bootstrap: str) -> tuple[list[Run], list[str]]:
    runs: list[Run] = []
    ingests = _ingests(args)
    answered = {label: 0 for label, _, _ in ingests}
    prefixes = {
        label: fresh_prefix(label.replace(" ", "-").replace("=", "-")) for label in answered
    }
    with ExitStack() as stack:
        bases = {"bare echo": stack.enter_context(uvicorn_server("echo_app"))}
        procs = {}
        for label, mode, src in ingests:
            port = free_port()
            cmd = ["ingest", "--kafka", bootstrap, "--topic-prefix", prefixes[label]]
            cmd += ["--port", str(port), "--ack", mode, "--data-dir", str(tmp / label)]
            cmd += ["--log-level", "warning"]
            log = tmp / f"ingest-{prefixes[label]}log"
            procs[label] = _start_ingest(stack, cmd, log, src)
            bases[label] = f"http://127.0.0.1:{port}"
            wait_ready(bases[label] + "/health", timeout=60)
        for conns in args.connections:
            args.conns = conns
            for target, base in bases.items():
                name = target.replace(" ", "-").replace("=", "-")
                script = tmp / f"warm-{conns}-{name}.lua"
                script.write_text(lua_mix(f"w{conns}{name}", args.slots))
                if args.warmup:
                    out = run_wrk(_wrk_args(args), str(script), base + "/wcs/", args.warmup)
                    if target in answered:
                        answered[target] += wrk_requests(out)
            for index in range(1, args.runs + 1):
                for target, base in bases.items():
                    name = target.replace(" ", "-").replace("=", "-")
                    script = tmp / f"mix-{conns}-{index}-{name}.lua"
                    script.write_text(lua_mix(f"c{conns}r{index}{name}", args.slots))
                    out = run_wrk(_wrk_args(args), str(script), base + "/wcs/", args.duration)
                    runs.append(parse_wrk(out, f"{target} c{conns}", index))
                    if target in answered:
                        answered[target] += wrk_requests(out)
                    print(
                        f"c{conns} run {index} {target}: {runs[-1].rps:,.0f} req/s", file=sys.stderr
                    )
        metrics = {label: _hooks_ok(bases[label]) for label in answered}
        exits = {label: stop(procs[label]) for label in answered}
    from events.topics import input_topics

    notes = []
    for label in answered:
        topics = input_topics(prefixes[label])
        records = sum(record_counts(bootstrap, topics).values())
        envelopes = sum(envelope_counts(bootstrap, topics).values())
        notes.append(
            f"- {label}: **{envelopes:,} envelopes in {records:,} Kafka records "
            f"({records / max(envelopes, 1):.3f} records per envelope)** in "
            f"`{prefixes[label]}<family>`; ingest /metrics "
            f'`wcs_hooks_total{{outcome="ok"}}` {metrics[label]:,}; wrk counted '
            f"{answered[label]:,} answers incl. warm-up (in flight at run ends not counted, up "
            f"to -c per run); exit status {exits[label]}; envelopes - ok answers: "
            f"**{envelopes - metrics[label]:+,}** (a hook whose client went away after its "
            "envelope was handed to the bus, e.g. in flight when a wrk run ends, can be "
            "published but not counted ok; a negative difference would be a loss)"
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
        "--kafka` (default settings, idempotent producer, acks=all) on a local single-node "
        "KRaft broker vs the bare uvicorn+orjson echo. wrk, broker and server share the CPUs."
        + (
            f" `base ack=...`: the ingest of the source tree {args.baseline_src}."
            if args.baseline_src
            else ""
        ),
        "",
        *runs_table(runs),
        "",
        "| -c | target | median req/s | median p50 ms | median p99 ms | errors "
        "| req/s vs echo | p50 vs echo | p99 vs echo |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for conns in args.connections:
        echo = medians(runs, f"bare echo c{conns}")
        for target in ("bare echo", *(label for label, _, _ in _ingests(args))):
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
    parser.add_argument(
        "--baseline-src", type=Path, help="also run the ingest of this source tree (before/after)"
    )
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
