"""Run every benchmark once, in sequence, with modest defaults (~5 minutes on 2 vCPUs).

ingest_bench (hook path vs echo), run_bench (the whole service: wrk A/B vs echo, then
the sustained-rate ramp), replay_bench (replay vs pipeline only), sink_bench (chDB
writer, coalescing on/off). Each script writes its own bench/results/<name>.md
(sink_bench only prints: its output is saved as sink.md); bench/results/summary.md
collects them with the exact commands, ``nproc`` and the load average before each.

``--kafka`` adds kafka_ingest_bench, worker_bench and e2e_latency_bench (real broker,
Java + Maven needed; about 6 more minutes).

Usage: .venv/bin/python bench/run_all.py [--only run,replay] [--kafka]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench/results"
PY = ".venv/bin/python"
BENCHES: dict[str, list[str]] = {
    "ingest": [PY, "bench/ingest_bench.py"],
    "run": [PY, "bench/run_bench.py", "--rates", "1000,2000,4000,8000", "--sustain", "30"],
    "replay": [PY, "bench/replay_bench.py", "--compiled"],
    "sink": [PY, "bench/sink_bench.py"],
}
# Real Kafka (each starts its own broker via deploy/kafka/kafka.sh): only with --kafka (~6 min)
KAFKA_BENCHES: dict[str, list[str]] = {
    "kafka_ingest": [PY, "bench/kafka_ingest_bench.py"],
    "worker": [PY, "bench/worker_bench.py"],
    "e2e_latency": [PY, "bench/e2e_latency_bench.py"],
}


def uptime() -> str:
    done = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def run_one(name: str, cmd: list[str]) -> tuple[int, list[str]]:
    """Run one bench (stderr passes through); returns its exit status and summary section."""
    before = uptime()
    print(f"== {name}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.monotonic() - started
    if name == "sink":  # sink_bench only prints its table
        (RESULTS / "sink.md").write_text(f"# Sink benchmark\n\n{done.stdout}")
    status = "" if done.returncode == 0 else f", **exit status {done.returncode}**"
    return done.returncode, [
        f"## {name}",
        "",
        f"`{shlex.join(cmd)}` ({seconds:.0f} s{status}); before: `{before}`",
        "",
        done.stdout.strip(),
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", help=f"comma-separated subset of {','.join({**BENCHES, **KAFKA_BENCHES})}"
    )
    parser.add_argument("--kafka", action="store_true", help="also the Kafka benches")
    args = parser.parse_args(argv)
    benches = {**BENCHES, **KAFKA_BENCHES} if args.kafka or args.only else BENCHES
    names = args.only.split(",") if args.only else list(benches)
    unknown = set(names) - set(benches)
    if unknown:
        parser.error(f"unknown bench {', '.join(sorted(unknown))}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Benchmarks ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        "",
        f"nproc {os.cpu_count()}, {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.platform()}",
        "",
    ]
    failed = 0
    for name in names:
        status, section = run_one(name, benches[name])
        failed += status != 0
        lines += section
    lines += [f"after: `{uptime()}`", ""]
    (RESULTS / "summary.md").write_text("\n".join(lines))
    print(f"wrote {RESULTS / 'summary.md'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
