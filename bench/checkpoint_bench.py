"""What a checkpoint writes to the state table under live traffic: the entity states, the
partition row, and the window counters -- stored a minute per row, only the minutes changed
since the last checkpoint (``sinks.state_store.split_meta``), against the partition row with
every held window inline as it was stored before, side by side in one run.

Usage: .venv/bin/python bench/checkpoint_bench.py [--trace FILE] [--flush-ms 1000]

The trace (``wcs-analytics simulate --scale 210 --minutes 90 --seed 3`` unless ``--trace``)
is fed to a ``PartitionRuntime`` in batches of ``--flush-ms`` of event time, as ``run`` sees
live traffic with its 1-second flush, and every batch ends with ``flush()`` and a checkpoint
whose state rows ``StateStore`` renders (no database: the rows are measured, not written).
Prints the JSON bytes of the state rows per checkpoint (median, total and per hour of
traffic) and the CPU seconds spent rendering the partition's rows either way. With
``--engine K`` the partition rows of the last K checkpoints (an hour of windows held) are
also inserted into a fresh chDB, one insert a checkpoint as ``run`` does, both ways
alternated: the seconds those inserts take.

A script, not a test: numbers are written down, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from events.envelope import decode  # noqa: E402 -- after the sys.path fix above
from processors.families import family  # noqa: E402
from processors.runtime import PartitionRuntime  # noqa: E402
from sinks.state_store import META, WINDOWS, StateStore, state_rows  # noqa: E402
from wcs_analytics import gc_tuning, settings  # noqa: E402

CLI = str(ROOT / ".venv/bin/wcs-analytics")


def envelopes(args: argparse.Namespace, tmp: Path) -> list[Any]:
    trace = Path(args.trace) if args.trace else tmp / "trace.ndjson"
    if not args.trace:
        cmd = [CLI, "simulate", "--out", str(trace), "--seed", "3", "--scale", "210"]
        subprocess.run([*cmd, "--minutes", "90"], check=True, capture_output=True)
    return [decode(line) for line in trace.read_bytes().splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", help="an envelope NDJSON (default: a simulated 90 minutes)")
    parser.add_argument("--flush-ms", type=int, default=1000, help="event time per checkpoint")
    parser.add_argument(
        "--engine", type=int, default=0, help="insert the last K checkpoints' rows into chDB"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="checkpoint_bench_") as name:
        batch = envelopes(args, Path(name))
    cfg = settings.load({}).processor_config()
    runtime = PartitionRuntime(cfg, persistent=True)
    store = StateStore(None, "wcs", "embedded", lambda: 0)
    gc_tuning.tune()
    entity_bytes: list[int] = []
    inline_bytes: list[int] = []  # the partition row with its windows inline (before)
    split_bytes: list[int] = []  # the partition row and the changed minutes (now)
    minute_rows: list[int] = []
    kept: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []  # (before, now) rows
    inline_s = split_s = 0.0
    version, start = 0, 0
    while start < len(batch):
        until = batch[start]["received_at"] + args.flush_ms
        end = start
        while end < len(batch) and batch[end]["received_at"] < until:
            end += 1
        runtime.feed(batch[start:end])
        runtime.flush()
        start, version = end, version + 1
        checkpoint = runtime.begin_checkpoint()
        states, _ = store_rows(store, checkpoint)
        entity_bytes.append(sum(len(row["state"]) for row in states))
        began = time.process_time()
        inline = orjson.dumps(checkpoint.meta).decode()
        inline_s += time.process_time() - began
        inline_bytes.append(len(inline))
        began = time.process_time()
        rows = store.meta_rows(checkpoint.meta, version, 0)
        split_s += time.process_time() - began
        split_bytes.append(sum(len(row["state"]) for row in rows))
        minute_rows.append(sum(row["family"] == WINDOWS for row in rows))
        if args.engine:
            before = {**rows[-1], "state": inline}
            kept.append(([before], rows))
            del kept[: -args.engine]
        assert sum(row["family"] == META for row in rows) == 1
    hours = (batch[-1]["received_at"] - batch[0]["received_at"]) / 3_600_000
    held = len(runtime.windows)
    print(f"{len(batch):,} envelopes over {hours * 60:.0f} minutes of traffic, "
          f"{version:,} checkpoints ({args.flush_ms} ms of event time each); "
          f"{held:,} windows held at the end")  # fmt: skip
    for label, sizes in (
        ("entity states", entity_bytes),
        ("partition row, windows inline (before)", inline_bytes),
        ("partition row + changed minutes (now)", split_bytes),
    ):
        total = sum(sizes)
        print(f"  {label}: median {statistics.median(sizes):,.0f} B a checkpoint, "
              f"total {total / 1e6:,.1f} MB, {total / 1e6 / hours:,.1f} MB per hour")  # fmt: skip
    print(f"  minute rows a checkpoint: median {statistics.median(minute_rows):.0f}, "
          f"max {max(minute_rows)}")  # fmt: skip
    print(f"  partition rows' bytes: {sum(inline_bytes) / sum(split_bytes):.1f}x fewer now; "
          f"CPU rendering them: inline {inline_s:.2f} s, now {split_s:.2f} s")  # fmt: skip
    if args.engine:
        before_s, now_s = engine(kept)
        print(f"  inserting the partition rows of the last {len(kept)} checkpoints into chDB "
              f"(one insert each): before {before_s:.2f} s, now {now_s:.2f} s")  # fmt: skip
    return 0


def engine(kept: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> tuple[float, float]:
    """Seconds the inserts of both ways take, alternated checkpoint by checkpoint, each way
    into its own fresh database of one chDB."""
    from sinks.client import connect
    from sinks.migrations import migrate
    from sinks.writer import ClickHouseWriter

    seconds = [0.0, 0.0]
    with tempfile.TemporaryDirectory(prefix="checkpoint_bench_chdb_") as name:
        client = connect(f"chdb://{name}/chdb", "before")
        writers = []
        for db in ("before", "now"):
            migrate(client, db)
            writers.append(ClickHouseWriter(client, db, now_ms=lambda: 0))
        for pair in kept:
            for way, rows in enumerate(pair):
                writers[way].add_state(rows)
                began = time.perf_counter()
                writers[way].flush()
                seconds[way] += time.perf_counter() - began
        client.close()
    return seconds[0], seconds[1]


def store_rows(store: StateStore, checkpoint: Any) -> tuple[list[dict[str, Any]], Any]:
    """The entity rows of a checkpoint (``StateStore.rows_for`` without its partition row)."""
    return state_rows(
        checkpoint, lambda key, state: family(key[0]).is_open(state), store.part, 0, 0
    )


if __name__ == "__main__":
    sys.exit(main())
