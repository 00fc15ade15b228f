"""Replay throughput: envelopes/s of `wcs-analytics replay` vs the same file through the
processors only, measured side by side in one run.

Input: an envelope NDJSON written by ``wcs-analytics simulate --out`` (``--scale 40
--minutes 30``: ~59k envelopes; or ``--trace FILE``). Per round, in this order:

- decode: ``events.envelope.decode`` of every line, in this process (the floor);
- pipeline: decode + ``processors.pipeline.Pipeline`` (process, advance the event clock,
  flush at the end -- what ``processors.embedded.feed``/``finish`` do) with the settings'
  default processor config, in this process, rows counted and dropped (no sink);
- replay: ``wcs-analytics replay FILE --data-dir <fresh dir>`` as a subprocess, i.e.
  decode + pipeline + the chDB sink. Rated by the seconds the command reports for its
  replay loop; the wall time of the whole process (start, chDB open, migrations) is
  shown beside it.

The in-process variants read the file into memory first (not timed). Median of
``--runs`` rounds. A script, not a test: numbers are written down, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from processors.pipeline import Pipeline  # noqa: E402

from events.envelope import decode  # noqa: E402 -- after the sys.path fix above
from processors.embedded import EventClock  # noqa: E402
from wcs_analytics import settings  # noqa: E402

CLI = str(ROOT / ".venv/bin/wcs-analytics")
REPLAYED = re.compile(r"replayed (\d+) envelopes \((\d+) rejected lines\) in ([\d.]+)s, (\d+) rows")


def decode_only(lines: list[bytes]) -> tuple[float, int]:
    started = time.perf_counter()
    for line in lines:
        decode(line)
    return time.perf_counter() - started, 0


def pipeline_only(lines: list[bytes]) -> tuple[float, int]:
    """Seconds and rows emitted for decode + pipeline, the way replay drives it, no sink."""
    started = time.perf_counter()
    pipeline = Pipeline(settings.load({}).processor_config())
    clock, rows = EventClock(follow_wall=False), 0
    for line in lines:
        rows += len(pipeline.process(decode(line)))
        clock.observe(pipeline.clock_ms)
        now = clock.now()
        if now is not None:
            rows += len(pipeline.advance(now))
    now = clock.now()
    rows += len(pipeline.advance(now)) if now is not None else 0
    rows += len(pipeline.flush())
    return time.perf_counter() - started, rows


def replay_cli(trace: Path, data_dir: Path) -> tuple[float, float, int, int]:
    """(reported replay seconds, process wall seconds, envelopes, rows written)."""
    cmd = [CLI, "replay", str(trace), "--data-dir", str(data_dir), "--log-level", "warning"]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    match = REPLAYED.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return float(match.group(3)), wall, int(match.group(1)), int(match.group(4))


def make_trace(args: argparse.Namespace, tmp: Path) -> Path:
    if args.trace is not None:
        return Path(args.trace)
    trace = tmp / "trace.ndjson"
    cmd = [CLI, "simulate", "--out", str(trace), "--seed", str(args.seed)]
    cmd += ["--scale", str(args.scale), "--minutes", str(args.minutes)]
    subprocess.run(cmd, check=True, capture_output=True)
    return trace


def report(args: argparse.Namespace, trace: Path, results: dict[str, list[tuple[Any, ...]]]) -> str:
    envelopes = results["replay"][0][2]
    source = args.trace or (
        f"`wcs-analytics simulate --seed {args.seed} --scale {args.scale} --minutes {args.minutes}`"
    )
    load = os.getloadavg()
    lines = [
        f"# Replay benchmark ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        "",
        f"{envelopes:,} envelopes ({trace.stat().st_size / 1e6:.1f} MB) from {source}; median "
        f"of {args.runs} rounds; {os.cpu_count()} CPUs, load average {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f} at the end, Python {platform.python_version()}.",
        "",
        "| stage | median s | envelopes/s | rows | vs pipeline only |",
        "|---|---:|---:|---:|---:|",
    ]
    pipeline_s = statistics.median(r[0] for r in results["pipeline"])
    labels = {
        "decode": "decode only (in process)",
        "pipeline": "decode + pipeline, no sink (in process)",
        "replay": "`wcs-analytics replay` (decode + pipeline + chDB sink)",
    }
    for name, label in labels.items():
        seconds = statistics.median(r[0] for r in results[name])
        rows = results[name][0][-1]
        rows_text = "-" if name == "decode" else f"{rows:,}"
        lines.append(
            f"| {label} | {seconds:.2f} | {envelopes / seconds:,.0f} | {rows_text} "
            f"| {pipeline_s / seconds:.2f}x |"
        )
    wall = statistics.median(r[1] for r in results["replay"])
    lines += [
        "",
        f"`wcs-analytics replay` process wall time (start, chDB open, migrations, replay, exit): "
        f"median {wall:.2f} s = {envelopes / wall:,.0f} envelopes/s. Rows: for the pipeline, "
        "rows emitted (before coalescing, no `events` rows); for replay, rows written to "
        "ClickHouse (re-emits coalesced by the writer, plus one `events` row per envelope).",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--trace", help="an envelope NDJSON to use instead of simulating one")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=40)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/replay.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, list[tuple[Any, ...]]] = {"decode": [], "pipeline": [], "replay": []}
    with tempfile.TemporaryDirectory(prefix="replay_bench_") as name:
        tmp = Path(name)
        trace = make_trace(args, tmp)
        lines = [line for line in trace.read_bytes().splitlines() if line.strip()]
        for run in range(1, args.runs + 1):
            results["decode"].append(decode_only(lines))
            results["pipeline"].append(pipeline_only(lines))
            results["replay"].append(replay_cli(trace, tmp / f"data-{run}"))
            seconds = {name: f"{r[-1][0]:.2f}s" for name, r in results.items()}
            print(f"round {run}: {seconds}", file=sys.stderr)
        text = report(args, trace, results)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
