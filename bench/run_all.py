"""Run every benchmark once, in sequence, with modest defaults (~5 minutes on 2 vCPUs).

ingest_bench (hook path vs echo), run_bench (the whole service: wrk A/B vs echo, then
the sustained-rate ramp), replay_bench (replay vs pipeline only), sink_bench (chDB
writer, coalescing on/off). Each script writes its own bench/results/<name>.md
(sink_bench only prints: its output is saved as sink.md); bench/results/summary.md
collects them with the exact commands, ``nproc`` and the load average before each.

Usage: .venv/bin/python bench/run_all.py [--only run,replay]
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
    "replay": [PY, "bench/replay_bench.py"],
    "sink": [PY, "bench/sink_bench.py"],
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
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHES)}")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = set(names) - set(BENCHES)
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
        status, section = run_one(name, BENCHES[name])
        failed += status != 0
        lines += section
    lines += [f"after: `{uptime()}`", ""]
    (RESULTS / "summary.md").write_text("\n".join(lines))
    print(f"wrote {RESULTS / 'summary.md'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
