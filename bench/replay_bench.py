"""Replay throughput: `wcs-analytics replay` against a floor that only parses each envelope and
stores it raw in the same engine, and the processors alone, measured side by side in one run.

Input: an envelope NDJSON written by ``wcs-analytics simulate --out`` (``--scale 40
--minutes 30``: ~59k envelopes; or ``--trace FILE``). Per round, alternating:

- processors: the envelopes decoded up front (not timed), then ``PartitionRuntime.feed`` in
  chunks of 2000 and ``flush`` (rows out, no sink), timed with the process CPU clock -- the
  number the "processors only" target is about; with ``--baseline-src DIR`` (a checkout of an
  older commit, e.g. ``git worktree add /tmp/base 28b5e9c``) its ``Pipeline`` the same way;
- floor: ``bench/floor_store.py``, a subprocess that reads the file, decodes every line with
  ``events.envelope.decode`` and inserts the ``events`` rows into a fresh chDB in 50 000-row
  inserts: what storing the raw events alone costs;
- replay: ``wcs-analytics replay FILE --data-dir <fresh dir> --jobs 1`` (one process) as a
  subprocess;
- with ``--split N``: the file split by entity key as Kafka partitions it (``partition_of`` of
  the envelope key, N parts, file order kept) and N ``replay`` processes, one per part, each
  with its own fresh data dir, run at once; rated by the slowest part's loop. Not a product
  path (windows are counted per part, not summed; N chDB instead of one): the headroom a
  multi-process replay has on this machine;
- with ``--jobs N``: ``wcs-analytics replay FILE --jobs N`` (the compiled build with
  ``--compiled``): the product path of a multi-process replay, one chDB, the same tables;
- with ``--prototype N``: ``bench/split_prototype.py`` with N part processes and one process
  owning the chDB (the compiled build with ``--compiled``), rated by its loop.

Floor and replay are rated by the seconds each reports for its loop (read, process, write,
all inserts finished); the process wall times (start, chDB open, migrations) are shown too,
and the CPU seconds each process used with its part processes (``getrusage`` of the
children): how many cores a target keeps busy. ``--cpus LIST`` runs the floor and the replays
under ``taskset -c LIST`` (e.g. ``--cpus 0``: one CPU), to see which of them a second core
speeds up.
Each run starts on a quiet machine (``bench/machine.py``: a 2-vCPU machine still writing the
last run's data slows the next) and the data directories of the floor and the replays are
removed after their run. Median of ``--runs`` rounds. A script, not a test: numbers are
written down, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import compiled
from machine import settle

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PY = str(ROOT / ".venv/bin/python")
CLI = str(ROOT / ".venv/bin/wcs-analytics")
REPLAYED = re.compile(r"replayed (\d+) envelopes \((\d+) rejected lines\) in ([\d.]+)s, (\d+) rows")
STORED = re.compile(r"stored (\d+) envelopes in ([\d.]+)s")
PROTOTYPE = re.compile(r"split prototype: (\d+) envelopes in ([\d.]+)s")
ONE_PROCESS = ("--jobs", "1", "--log-level", "warning")
PROCESSED = re.compile(r"processed (\d+) envelopes in ([\d.]+)s cpu, (\d+) rows")

PROCESSORS = """
import sys, time
sys.path.insert(0, {src!r})
from events.envelope import decode
from wcs_analytics import settings
lines = [l for l in open({trace!r}, 'rb').read().splitlines() if l.strip()]
envelopes = [decode(l) for l in lines]
cfg = settings.load({{}}).processor_config()
{body}
print(f"processed {{len(envelopes)}} envelopes in {{seconds:.3f}}s cpu, {{rows}} rows")
"""
RUNTIME = """
from processors.alert_rules import load_rules
from processors.alert_stage import AlertStage
from processors.runtime import PartitionRuntime
from wcs_analytics import gc_tuning
gc_tuning.tune()
runtime = PartitionRuntime(cfg, AlertStage(load_rules(None)))
started, rows = time.process_time(), 0
for i in range(0, len(envelopes), 2000):
    runtime.feed(envelopes[i:i + 2000])
    rows += len(runtime.flush(windows=False))
rows += len(runtime.flush())
seconds = time.process_time() - started
"""
PIPELINE = """
from processors.embedded import EventClock
from processors.pipeline import Pipeline
pipeline, clock = Pipeline(cfg), EventClock(follow_wall=False)
started, rows = time.process_time(), 0
for envelope in envelopes:
    rows += len(pipeline.process(envelope))
    clock.observe(pipeline.clock_ms)
    rows += len(pipeline.advance(clock.now()))
rows += len(pipeline.advance(clock.now())) + len(pipeline.flush())
seconds = time.process_time() - started
"""


PINNED: list[str] = []  # ``taskset -c LIST`` (``--cpus``) before the floor and the replays


def children_cpu() -> float:
    """CPU seconds of the finished children (and the children they waited for) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(cmd: list[str], pattern: re.Pattern[str]) -> tuple[re.Match[str], float, float]:
    """``cmd``'s match of ``pattern``, its wall seconds and the CPU seconds of its process tree."""
    settle()  # no target pays for the one before (its writes, chDB's merges): bench/machine.py
    cpu, started = children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu
    match = pattern.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return match, wall, cpu


Result = tuple[float, float, int, float]  # (loop s, process wall s, rows, process CPU s)


def processors(trace: Path, src: Path, body: str) -> Result:
    code = PROCESSORS.format(src=str(src), trace=str(trace), body=body)
    match, _, _ = run([PY, "-c", code], PROCESSED)
    return float(match.group(2)), 0.0, int(match.group(3)), 0.0


def floor(trace: Path, data_dir: Path) -> Result:
    cmd = [*PINNED, PY, str(ROOT / "bench/floor_store.py"), str(trace), str(data_dir)]
    match, wall, cpu = run(cmd, STORED)
    shutil.rmtree(data_dir, ignore_errors=True)  # ~0.1 GB each: the next run starts alike
    return float(match.group(2)), wall, int(match.group(1)), cpu


def replay(trace: Path, data_dir: Path, cli: str = CLI, jobs: int = 1) -> Result:
    cmd = [*PINNED, cli, "replay", str(trace), "--data-dir", str(data_dir)]
    cmd += ["--log-level", "warning", "--jobs", str(jobs)]  # --jobs always: auto is the default
    match, wall, cpu = run(cmd, REPLAYED)
    shutil.rmtree(data_dir, ignore_errors=True)
    return float(match.group(3)), wall, int(match.group(4)), cpu


def split(trace: Path, parts: int, tmp: Path) -> list[Path]:
    """``trace`` split by envelope key into ``parts`` files, as Kafka partitions would."""
    import orjson

    from ingest.kafka_batch import partition_of

    paths = [tmp / f"part-{i}.ndjson" for i in range(parts)]
    outs = [path.open("wb") for path in paths]
    with trace.open("rb") as handle:
        for line in handle:
            if line.strip():
                outs[partition_of(orjson.loads(line)["key"].encode(), parts)].write(line)
    for out in outs:
        out.close()
    return paths


def replay_split(paths: list[Path], data_dir: Path, cli: str) -> Result:
    """One ``replay`` per part, all at once; (slowest loop s, wall s, rows written, CPU s)."""
    settle()
    cpu, started = children_cpu(), time.perf_counter()
    procs = [
        subprocess.Popen(
            [*PINNED, cli, "replay", str(p), "--data-dir", str(data_dir / p.stem), *ONE_PROCESS],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for p in paths
    ]
    outs = [proc.communicate() for proc in procs]
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu
    seconds, rows = 0.0, 0
    for proc, (out, err) in zip(procs, outs, strict=True):
        match = REPLAYED.search(out)
        if proc.returncode != 0 or match is None:
            raise SystemExit(f"replay of a part failed ({proc.returncode}):\n{out}{err}")
        seconds, rows = max(seconds, float(match.group(3))), rows + int(match.group(4))
    return seconds, wall, rows, cpu


def prototype(trace: Path, data_dir: Path, parts: int, src: Path) -> Result:
    cmd = [PY, str(ROOT / "bench/split_prototype.py"), str(trace), str(data_dir), str(parts)]
    match, wall, cpu = run([*PINNED, *cmd, "--src", str(src)], PROTOTYPE)
    return float(match.group(2)), wall, int(match.group(1)), cpu


def make_trace(args: argparse.Namespace, tmp: Path) -> Path:
    if args.trace is not None:
        return Path(args.trace)
    trace = tmp / "trace.ndjson"
    cmd = [CLI, "simulate", "--out", str(trace), "--seed", str(args.seed)]
    cmd += ["--scale", str(args.scale), "--minutes", str(args.minutes)]
    subprocess.run(cmd, check=True, capture_output=True)
    return trace


def report(args: argparse.Namespace, trace: Path, results: dict[str, list[Result]]) -> str:
    envelopes = sum(1 for line in trace.read_bytes().splitlines() if line.strip())
    source = args.trace or (
        f"`wcs-analytics simulate --seed {args.seed} --scale {args.scale} --minutes {args.minutes}`"
    )
    load = os.getloadavg()
    median = {name: statistics.median(r[0] for r in rs) for name, rs in results.items() if rs}
    lines = [
        f"# Replay benchmark ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        "",
        f"{envelopes:,} envelopes ({trace.stat().st_size / 1e6:.1f} MB) from {source}; median "
        f"of {args.runs} alternating rounds; {os.cpu_count()} CPUs, load average {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f} at the end, Python {platform.python_version()}.",
        "",
        "| what | median s | envelopes/s | ratio |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "baseline": "processors of `--baseline-src` (Pipeline, per event; CPU s)",
        "processors": "processors: `PartitionRuntime` feed + flush, decoded input (CPU s)",
        "floor": "floor: decode + store the raw `events` rows in chDB",
        "replay": "`wcs-analytics replay` (decode + processors + chDB sink)",
        "processors_c": "processors, compiled build (`--compiled`: the wheel; CPU s)",
        "replay_c": "`wcs-analytics replay`, compiled build (`--compiled`)",
        "jobs": f"`wcs-analytics replay --jobs {args.jobs}`"
        + (", compiled build" if args.compiled else ""),
        "split": f"{args.split} `replay` processes on key-split parts at once (`--split`)",
        "prototype": f"`bench/split_prototype.py`, {args.prototype} part processes (`--prototype`)",
    }
    for name, label in labels.items():
        if name not in median:
            continue
        ratio = ""
        if name.startswith("replay") or name in ("jobs", "split", "prototype"):
            ratio = f"{median['floor'] / median[name]:.2f}x the floor"
        if name in ("jobs", "split", "prototype"):
            ref = "replay_c" if "replay_c" in median else "replay"
            ratio += f"; {median[ref] / median[name]:.2f}x one `replay` of the whole file"
        elif name.startswith("processors") and "baseline" in median:
            ratio = f"{median['baseline'] / median[name]:.2f}x the baseline"
        if name.endswith("_c"):
            ratio += f"; {median[name[:-2]] / median[name]:.2f}x interpreted"
        lines.append(
            f"| {label} | {median[name]:.2f} | {envelopes / median[name]:,.0f} | {ratio} |"
        )
    walls = {n: statistics.median(r[1] for r in results[n]) for n in median if n != "baseline"}
    walls = {n: w for n, w in walls.items() if w}
    shown = ", ".join(
        f"{n} {w:.2f} s" + ("" if n == "floor" else f" ({walls['floor'] / w:.2f}x)")
        for n, w in walls.items()
    )
    cpus = {n: statistics.median(r[3] for r in results[n]) for n in walls}
    used = ", ".join(f"{n} {c:.2f} s ({c / walls[n]:.2f} cores)" for n, c in cpus.items())
    lines += [
        "",
        f"Process wall times (start, chDB open, migrations, the loop, exit): {shown}.",
        "",
        f"CPU of each process with its part processes, and the cores it kept busy over its "
        f"wall time: {used}.",
        "",
    ]
    if args.cpus:
        lines += [f"The floor and the replays ran under `taskset -c {args.cpus}`.", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--trace", help="an envelope NDJSON to use instead of simulating one")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=40)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument(
        "--baseline-src", type=Path, help="an older checkout whose Pipeline to measure too"
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="also measure the wheel as pip install . builds it (mypyc-compiled processors)",
    )
    parser.add_argument(
        "--split",
        type=int,
        default=0,
        help="also run N replays of key-split parts at once (the compiled build with --compiled)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="also run replay --jobs N (the compiled build with --compiled)",
    )
    parser.add_argument(
        "--prototype",
        type=int,
        default=0,
        help="also run bench/split_prototype.py with N part processes",
    )
    parser.add_argument(
        "--cpus",
        help="run the floor and the replays under taskset -c CPUS (e.g. 0: one CPU)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/replay.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cpus:
        if shutil.which("taskset") is None:
            raise SystemExit("--cpus needs taskset (util-linux)")
        PINNED[:] = ["taskset", "-c", args.cpus]
    results: dict[str, list[Result]] = {
        "baseline": [], "processors": [], "processors_c": [], "floor": [], "replay": [],
        "replay_c": [], "jobs": [], "split": [], "prototype": [],
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="replay_bench_") as name:
        tmp = Path(name)
        trace = make_trace(args, tmp)
        packages, cli = compiled.build(tmp) if args.compiled else (ROOT, CLI)
        parts = split(trace, args.split, tmp) if args.split > 1 else []
        for round_ in range(1, args.runs + 1):
            if args.baseline_src is not None:
                results["baseline"].append(processors(trace, args.baseline_src, PIPELINE))
            results["processors"].append(processors(trace, ROOT, RUNTIME))
            if args.compiled:
                results["processors_c"].append(processors(trace, packages, RUNTIME))
            results["floor"].append(floor(trace, tmp / f"floor-{round_}"))
            results["replay"].append(replay(trace, tmp / f"replay-{round_}"))
            if args.compiled:
                results["replay_c"].append(replay(trace, tmp / f"replay-c-{round_}", cli))
            if args.jobs:
                where = tmp / f"jobs-{round_}"
                results["jobs"].append(replay(trace, where, cli, args.jobs))
            if parts:
                results["split"].append(replay_split(parts, tmp / f"split-{round_}", cli))
            if args.prototype:
                where = tmp / f"prototype-{round_}"
                results["prototype"].append(prototype(trace, where, args.prototype, packages))
            seconds = {n: f"{r[-1][0]:.2f}s" for n, r in results.items() if r}
            print(f"round {round_}: {seconds}", file=sys.stderr)
        text = report(args, trace, results)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
