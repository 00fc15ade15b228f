"""ClickHouseWriter throughput into embedded chDB by insert size, as a markdown table.

Usage: .venv/bin/python bench/sink_bench.py [--runs 3] [--rows 100000] [--versions 1]

Workload: calls-like rows (``--versions`` rows per call, as a runtime flush renders each
changed call once). The rows are ``add``-ed and ``flush``-ed in inserts of N rows; rows/s
counts rows per second of add+flush (row generation is not timed). The smallest insert size
is the baseline: an insert has a fixed cost, so few large inserts (one per table per flush)
are what the sink does. Median of ``--runs`` runs. A script, not a test.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from events.tables import CALLS, Row  # noqa: E402 -- after the sys.path fix above
from sinks.client import connect  # noqa: E402
from sinks.migrations import migrate  # noqa: E402
from sinks.writer import ClickHouseWriter  # noqa: E402

BATCHES = (500, 5000, 50000)
HEADER = (
    "rows per insert",
    "rows/s",
    "inserted",
    "vs the smallest inserts",
)
BASE_MS = 1_700_000_000_000


def call_row(call: int, version: int) -> Row:
    ms = BASE_MS + call * 37
    answered = version >= 2
    ended = version >= 5
    values: dict[str, Any] = {
        "call_id": f"9f1c6b1e-{call:08d}-4a7b-9c1d",
        "node_id": "d2hxOg1vFNxqvHQPv4rtOFvDVBHk7rBB@95.191.130.39",
        "app_key": "defaultApp",
        "session_id": f"04cfeb85-cf9c-49aa-8144-{call % 500:012d}",
        "caller": f"user{call % 1000}@sip.example.com",
        "callee": f"user{(call + 1) % 1000}@sip.example.com",
        "incoming": call % 2 == 0,
        "has_video": call % 3 == 0,
        "media_provider": "WebRTC",
        "created_at": ms,
        "ringing_at": ms + 120,
        "answered_at": ms + 2100 if answered else None,
        "ended_at": ms + 60_000 if ended else None,
        "last_event_at": ms + version * 1000,
        "status": ("RINGING", "ESTABLISHED", "HOLD", "ESTABLISHED", "FINISH")[min(version, 5) - 1],
        "disposition": "answered" if ended else "",
        "pdd_ms": 120,
        "duration_ms": 60_000 if ended else None,
        "talk_ms": 57_900 if ended else None,
        "hold_ms": 1000 if version >= 3 else 0,
        "sip_status": 200 if answered else None,
        "info": "Normal call clearing" if ended else "",
        "closed_by": "hangup" if ended else "",
        "custom": "",
        "version": version,
    }
    return CALLS.name, values


def workload(rows: int, versions: int) -> list[Row]:
    """Input rows in emission order: calls interleave, each emitted ``versions`` times."""
    calls = rows // versions
    window = 200  # calls in progress at once
    out: list[Row] = []
    for start in range(0, calls, window):
        ids = range(start, min(start + window, calls))
        out += [call_row(call, v) for v in range(1, versions + 1) for call in ids]
    return out


def one_run(client: Any, database: str, rows: list[Row], batch: int) -> tuple[float, int]:
    """Seconds for add+flush of every batch, and the rows inserted."""
    writer = ClickHouseWriter(client, database, max_rows=batch, now_ms=lambda: 0)
    started = time.perf_counter()
    for offset in range(0, len(rows), batch):
        writer.add(rows[offset : offset + batch])
        writer.flush()
    return time.perf_counter() - started, writer.stats["rows_written"]


def measure(client: Any, rows: list[Row], batch: int, runs: int) -> tuple[float, int]:
    rates, inserted = [], 0
    for run in range(runs):
        database = f"bench_{batch}_{run}"
        migrate(client, database)
        seconds, inserted = one_run(client, database, rows, batch)
        rates.append(len(rows) / seconds)
        client.command(f"DROP DATABASE {database} SYNC")
    return statistics.median(rates), inserted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000, help="input rows per run")
    parser.add_argument("--versions", type=int, default=1, help="rows per call")
    args = parser.parse_args()
    rows = workload(args.rows, args.versions)
    print(
        f"chDB via clickhouse-connect, {len(rows)} calls rows ({args.versions} versions per call),"
    )
    print(f"median of {args.runs} runs, Python {platform.python_version()}, {platform.machine()}\n")
    print(f"| {' | '.join(HEADER)} |")
    print(f"|{'---:|' * len(HEADER)}")
    with tempfile.TemporaryDirectory(prefix="sink_bench_") as path:
        client = connect(f"chdb://{path}", "default")
        try:
            smallest = 0.0
            for batch in BATCHES:
                rate, inserted = measure(client, rows, batch, args.runs)
                smallest = smallest or rate
                cells = (batch, f"{rate:,.0f}", inserted, f"{rate / smallest:.1f}x")
                print(f"| {' | '.join(str(c) for c in cells)} |")
        finally:
            client.close()


if __name__ == "__main__":
    main()
