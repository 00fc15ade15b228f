"""The whole ``wcs-analytics run`` process (ingest + processors + chDB sink) under a hook mix.

Two measurements, one report (bench/results/run.md):

1. Closed loop, A/B with wrk: the service vs the bare uvicorn+orjson echo of
   bench/ingest_bench.py, alternated (echo, run, echo, run, ...). Both get the same
   Lua-generated mix of 16 hooks per simulated WCS session (connect, connection status,
   publishStream, StreamStatusEvent, keep-alives, call + CallStatusEvents, sendMessage +
   MessageStatusEvent, unpublish, disconnect). Sessions are interleaved over ``--slots``
   slots and every key (sessionId, mediaSessionId, callId, message id) is fresh per
   session, so the processors create, update and close many entities. Reports req/s,
   p50/p99 and the ratio run/echo of the median req/s.
2. Sustained, open loop: a fresh service per rate step gets a fixed request rate
   (requests scheduled at start + i/rate whatever the answers do; latency measured from
   the scheduled time, so it does not hide queueing) for ``--sustain`` seconds from an
   asyncio + httptools generator in this process (wrk2 is not packaged in Debian).
   /metrics and /health are sampled every second. A step kept up when every answer is
   200, nothing overflowed to the spool, the generator kept the rate, p99 latency stayed
   under ``--max-p99-ms`` (a starved server queues in its sockets, not in the bus), the
   processors kept >= 95% of the rate and the queue depth stayed bounded (least-squares
   slope below 2% of the rate per second, and below half a second of input at least once
   in the last third of the load: flush pauses make it spiky). It is intact when, after
   SIGTERM, the ``events`` table holds exactly one row per 200 answer. The ramp stops at
   the first step that did not keep up.

Usage: .venv/bin/python bench/run_bench.py [--runs 3] [--duration 5] [--rates 1000,2000,4000]
A script, not a test: numbers are written down, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import compiled
from ingest_bench import ROOT, run_wrk, uvicorn_server
from report import (
    Run,
    median_ratio,
    medians_table,
    parse_wrk,
    publish,
    ratio_line,
    runs_table,
    wrk_requests,
)
from run_load import Service, StepResult, sustained_step
from run_mix import MIX, lua_mix, only

CLI = str(ROOT / ".venv/bin/wcs-analytics")
BASELINE = "run (baseline)"


def ab_runs(args: argparse.Namespace, tmp: Path, cli: str) -> tuple[list[Run], str]:
    """Alternate echo / run service under wrk; returns the runs and a stored-events note."""
    completed = 0
    with ExitStack() as stack:
        service = stack.enter_context(Service(cli, tmp / "ab-data", tmp / "ab-service.log"))
        bases = {"bare echo": stack.enter_context(uvicorn_server("echo_app")), "run": service.base}
        if args.baseline_cli:
            other = Service(args.baseline_cli, tmp / "ab-baseline", tmp / "ab-baseline.log")
            bases[BASELINE] = stack.enter_context(other).base
        runs: list[Run] = []
        passes = [("warmup", args.warmup)] * (args.warmup > 0) + [
            (str(index), args.duration) for index in range(1, args.runs + 1)
        ]
        for label, seconds in passes:
            for target, base in bases.items():
                script = tmp / f"mix-{target[0]}{label}.lua"
                script.write_text(lua_mix(f"{target[0]}{label}", args.slots, args.hook))
                output = run_wrk(args, str(script), base + "/wcs/", seconds)
                if target == "run":
                    completed += wrk_requests(output)
                if label != "warmup":
                    runs.append(parse_wrk(output, target, int(label)))
                    print(f"run {label} {target}: {runs[-1].rps:,.0f} req/s", file=sys.stderr)
        rc = service.stop()
        stored = service.count_events()
    note = (
        f"run service after the A/B runs: exit status {rc} on SIGTERM, {stored:,} rows in "
        f"`events` for {completed:,} answers wrk counted (wrk does not count answers still "
        f"in flight when a run ends, up to {args.connections} per run)"
    )
    return runs, note


# ---- report ------------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> str:
    if args.hook is not None:
        bodies = len(only(args.hook))
        if bodies == 1:
            return f"`{args.hook}` only (its body in the mix, one key per slot throughout)"
        return f"`{args.hook}` only (its {bodies} bodies in the mix, a new key per round)"
    return f"{len(MIX)}-hook session mix ({', '.join(sorted({m for m, _ in MIX}))})"


def ab_table(args: argparse.Namespace, runs: list[Run], note: str) -> list[str]:
    targets = ("bare echo", "run") + ((BASELINE,) if args.baseline_cli else ())
    versus = (
        [
            ratio_line("run", BASELINE, median_ratio(runs, "run", BASELINE)),
            f"(baseline: `{args.baseline_cli}`)",
            "",
        ]
        if args.baseline_cli
        else []
    )
    return [
        "## Closed loop: run service vs bare echo (wrk)",
        "",
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency"
        f"{f' pinned to CPU {args.wrk_cpu} (taskset)' if args.wrk_cpu >= 0 else ''}, "
        f"{_load(args)} over {args.slots} interleaved slots. Each run starts on a quiet "
        "machine (at most 15% busy over 0.5 s, waited for up to 30 s): no target pays for "
        "the work the previous one still does after its run.",
        "",
        *runs_table(runs),
        "",
        *medians_table(runs, targets),
        "",
        ratio_line("run", "bare echo", median_ratio(runs, "run", "bare echo")),
        "",
        *versus,
        note,
        "",
    ]


def sustained_table(args: argparse.Namespace, steps: list[StepResult]) -> list[str]:
    lines = [
        "## Sustained: fixed request rate into the run service (open loop)",
        "",
        f"{args.sustain} s per step, {args.gen_connections} keep-alive connections (pipelined "
        "when answers lag), latency from the scheduled send time; /metrics and /health sampled "
        "every second; a fresh service and data dir per step, SIGTERM after the load, then "
        "`SELECT count() FROM events`. Depth slope: least-squares fit of "
        "`wcs_ingest_queue_depth` over the load; drain: seconds after the load until "
        "`wcs_processed_total` reached the 200 answers (or stopped moving).",
        "",
        "| target req/s | sent req/s | 200 | non-200 / lost | p50 ms | p99 ms | max depth "
        "| depth slope /s | overflow | processed/s | /health max ms | drain s | events rows "
        "| stop s | verdict |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [s.row() for s in steps]
    kept_up = [s.rate for s in steps if s.ok]
    best = f"{max(kept_up):,} req/s" if kept_up else "none of the rates tried"
    lines += [
        "",
        f"**highest rate that kept up (every answer 200, p99 <= {args.max_p99_ms:g} ms, "
        f"processed >= 95% of the rate, no overflow, bounded queue): {best}**",
        "",
    ]
    lossy = [s for s in steps if not s.intact]
    if lossy:
        lines.append(
            "**events rows did not match the 200 answers at "
            + ", ".join(f"{s.rate:,} req/s ({'; '.join(s.losses)})" for s in lossy)
            + "**"
        )
    else:
        lines.append("events rows matched the 200 answers at every step.")
    return [*lines, ""]


def header() -> list[str]:
    load = os.getloadavg()
    return [
        f"# Run service benchmark ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        "",
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the "
        f"start, Python {platform.python_version()}; service: `wcs-analytics run` (uvloop, "
        "httptools, embedded chDB, default settings); baseline: bare uvicorn+orjson echo "
        "(bench/ingest_bench.py). Load generators run on the same machine.",
        "",
    ]


# ---- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per target, alternated A/B")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded wrk load")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument(
        "--wrk-cpu",
        type=int,
        default=(os.cpu_count() or 1) - 1 if (os.cpu_count() or 1) > 1 else -1,
        help="pin wrk to this CPU with taskset (default: the last one; -1: not pinned)",
    )
    parser.add_argument("--slots", type=int, default=500, help="sessions in progress at once")
    parser.add_argument(
        "--hook",
        default=None,
        metavar="METHOD",
        help="load one method of the mix only (e.g. StreamKeepAliveEvent: the keep-alives of "
        "--slots streams); default: the whole session mix",
    )
    parser.add_argument("--rates", default="1000,2000,4000,8000", help="sustained ramp, req/s")
    parser.add_argument("--sustain", type=int, default=30, help="seconds per sustained step")
    parser.add_argument("--gen-connections", type=int, default=32, help="open-loop connections")
    parser.add_argument(
        "--max-p99-ms", type=float, default=500, help="sustained: highest p99 that keeps up"
    )
    parser.add_argument("--skip-ab", action="store_true", help="only the sustained ramp")
    parser.add_argument("--skip-sustained", action="store_true", help="only the wrk A/B")
    parser.add_argument(
        "--compiled", action="store_true", help="run the wheel as pip install . builds it (mypyc)"
    )
    parser.add_argument(
        "--baseline-cli",
        help="a second `wcs-analytics` launcher (e.g. another commit's compiled build), "
        "alternated with the others as `run (baseline)`",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/run.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None and not args.skip_ab:
        print("wrk not found; install with: apt-get install -y wrk", file=sys.stderr)
        return 2
    lines = header()
    with tempfile.TemporaryDirectory(prefix="run_bench_") as name:
        tmp = Path(name)
        cli = compiled.build(tmp)[1] if args.compiled else CLI
        if not args.skip_ab:
            lines += ab_table(args, *ab_runs(args, tmp, cli))
        if not args.skip_sustained:
            steps: list[StepResult] = []
            for rate in (int(r) for r in args.rates.split(",")):
                steps.append(sustained_step(cli, tmp / f"step-{rate}", rate, args))
                print(f"sustained {rate:,} req/s: {steps[-1].verdict()}", file=sys.stderr)
                if not steps[-1].ok:
                    break
            lines += sustained_table(args, steps)
    text = "\n".join(lines)
    publish(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
