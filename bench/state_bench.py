"""What keeping sessions costs: memory per open session in the runtime, memory per closed
session left in the state table, and the cost of looking closed sessions up again.

Usage: .venv/bin/python bench/state_bench.py [--sessions 20000] [--stored 200000] [--runs 3]

1. Memory per open session: ``--sessions`` calls (call, RING, ESTABLISHED: open), streams
   (publishStream, PUBLISHING and 64 keep-alives: a full keep-alive window), connections
   (connect, ESTABLISHED) and messages (sendMessage, ACCEPTED) fed to a ``PartitionRuntime``;
   ``tracemalloc`` bytes of the runtime (states, timers, windows) divided by the sessions,
   after the rows were rendered (so the envelopes themselves are not counted).
2. Memory per closed session that left memory: the key filter's bytes per stored key
   (``sinks.key_filter.KeyFilter`` at 0.1 % false positives).
3. Lookup cost: ``--stored`` closed call states written to a fresh chDB state table through
   ``StateStore``; then ``StateStore.lookup`` of batches of 10 / 100 / 1000 keys (half stored,
   half unknown to the filter, so only the stored half is queried), median of ``--runs``.

A script, not a test: numbers are written down, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from events.catalog import resolve  # noqa: E402 -- after the sys.path fix above
from events.envelope import Envelope, make  # noqa: E402
from processors.calls import CallState  # noqa: E402
from processors.clock import wall_ms  # noqa: E402
from processors.config import ProcessorConfig  # noqa: E402
from processors.runtime import Checkpoint, PartitionRuntime  # noqa: E402
from sinks.client import connect  # noqa: E402
from sinks.key_filter import KeyFilter  # noqa: E402
from sinks.migrations import migrate  # noqa: E402
from sinks.state_store import StateStore  # noqa: E402
from sinks.writer import ClickHouseWriter  # noqa: E402

T0 = 1_767_225_600_000
SCOPE: dict[str, Any] = {"nodeId": "node-1@10.0.0.1", "appKey": "bench", "sessionId": "s"}


def _env(n: int, method: str, at: int, **body: Any) -> Envelope:
    return make(resolve(method), SCOPE | body, at, f"b-{n}")


def sessions(kind: str, count: int) -> list[Envelope]:
    out: list[Envelope] = []
    n = 0
    for i in range(count):
        at = T0 + i
        c: dict[str, Any]
        if kind == "call":
            c = {"callId": f"call-{i}", "caller": "1001", "callee": "+79001234567"}
            steps = [("call", {}), ("CallStatusEvent", {"status": "RING"}),
                     ("CallStatusEvent", {"status": "ESTABLISHED"})]  # fmt: skip
        elif kind == "stream":
            c = {"mediaSessionId": f"ms-{i}", "name": f"stream-{i}", "published": True}
            steps = [("publishStream", {}), ("StreamStatusEvent", {"status": "PUBLISHING"})]
            steps += [("StreamKeepAliveEvent", {"status": "PUBLISHING"})] * 64
        elif kind == "connection":
            c = {"sessionId": f"ws-{i}", "clientVersion": "3.0"}
            steps = [("connect", {}), ("ConnectionStatusEvent", {"status": "ESTABLISHED"})]
        else:
            c = {"id": f"msg-{i}", "from": "a", "to": "b"}
            steps = [("sendMessage", {}), ("MessageStatusEvent", {"status": "ACCEPTED"})]
        for step, (method, extra) in enumerate(steps):
            n += 1
            out.append(_env(n, method, at + step * 10_000, **c, **extra))
    return sorted(out, key=lambda e: e["received_at"])


def bytes_per_open(kind: str, count: int) -> float:
    envelopes = sessions(kind, count)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    runtime = PartitionRuntime(ProcessorConfig(), persistent=True)
    for i in range(0, len(envelopes), 5000):
        runtime.feed(envelopes[i : i + 5000])
        runtime.flush(windows=False)
    runtime.begin_checkpoint()  # hands the changed states over, as every flush does
    runtime.flush()
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert runtime.open_entities() == count, (kind, runtime.open_entities())
    del envelopes
    return used / count


def lookup_costs(stored: int, runs: int) -> tuple[float, dict[int, float]]:
    """(seconds to write ``stored`` states, {batch: median lookup seconds})."""
    with tempfile.TemporaryDirectory(prefix="state_bench_") as path:
        client = connect(f"chdb://{path}/chdb", "wcs")
        migrate(client, "wcs")
        store = StateStore(client, "wcs", "bench", wall_ms)
        writer = ClickHouseWriter(client, "wcs", now_ms=wall_ms)
        started = time.perf_counter()
        for start in range(0, stored, 50_000):
            states = {}
            for i in range(start, min(start + 50_000, stored)):
                state = CallState(f"call-{i}", T0 + i)
                state.timed_out_at = T0 + i + 1
                states[("call", f"call-{i}")] = state
            checkpoint = Checkpoint({}, states, {"clock": T0})
            writer.add_state(store.rows_for(checkpoint, lambda k, s: False))
            writer.flush()
        write_s = time.perf_counter() - started
        costs = {}
        for batch in (10, 100, 1000):
            seconds = []
            for run in range(runs):
                known = [
                    ("call", f"call-{(run * 7919 + i * 104729) % stored}")
                    for i in range(batch // 2)
                ]
                unknown = [("call", f"new-{run}-{i}") for i in range(batch - len(known))]
                started = time.perf_counter()
                found = store.lookup(known + unknown)
                seconds.append(time.perf_counter() - started)
                assert len(found) == len(known), (len(found), len(known))
            costs[batch] = statistics.median(seconds)
        client.close()
    return write_s, costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--stored", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/state.md")
    args = parser.parse_args(argv)
    lines = [
        f"# Session state costs ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        "",
        f"Python {platform.python_version()}, {platform.machine()}.",
        "",
        "| open session | bytes in the runtime (state, timer, window share) |",
        "|---|---:|",
    ]
    for kind in ("call", "stream", "connection", "message"):
        lines.append(f"| {kind} | {bytes_per_open(kind, args.sessions):,.0f} |")
    bloom = KeyFilter()
    for i in range(1_000_000):
        bloom.add("call", f"call-{i}")
    lines += [
        "",
        f"Closed session evicted to the state table: {bloom.nbytes / len(bloom):.2f} bytes of "
        "key filter in memory per stored key (1 M keys, 0.1 % false positives).",
        "",
    ]
    write_s, costs = lookup_costs(args.stored, args.runs)
    lines += [
        f"State table with {args.stored:,} closed call states (written in {write_s:.1f} s); "
        f"`StateStore.lookup`, median of {args.runs}:",
        "",
        "| keys looked up (half stored) | ms |",
        "|---:|---:|",
        *(f"| {batch} | {seconds * 1000:.1f} |" for batch, seconds in costs.items()),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
