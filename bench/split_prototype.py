"""Prototype, not a product path: `replay` processing in N part processes, one process owning chDB.

    .venv/bin/python bench/split_prototype.py TRACE DATA_DIR [PARTS] [--src DIR]

What a multi-process replay would cost, measured before one was built (bench/README.md,
"Measured on 2026-12-06 evening"); ``replay --jobs N`` is that product path now,
``replay_bench.py --jobs N --prototype N`` runs both. Each part process reads the whole
file, decodes the head of every line (``received_at``, ``key``), fully decodes only the
lines whose key it owns (crc32 of the key modulo PARTS), feeds ``processors.split.Part``
(the other lines only move its clock), builds its own ``events`` columns and, every 12
chunks of 2,000 lines, sends its rows, window emissions and events columns down a pipe. The
parent reads the heads too, feeds ``processors.split.Merger`` (summed windows, the one alert
stage), and inserts everything through one ``ClickHouseWriter`` and its insert thread into a
fresh chDB under DATA_DIR. Prints the loop seconds (database open -> last insert done, as
``replay`` reports its loop; the part processes start before the database is opened) and how
long the parent waited for the parts, for its previous insert and for the last one.

Missing, so not comparable row for row with ``replay``: the state store (no restore, no
lookups, no checkpoint), redaction, rejects (bad lines, implausible times), progress.
``--src DIR`` imports the project from DIR (e.g. the compiled build of bench/compiled.py).
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import sys
import time
import zlib
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 2000
FLUSH_CHUNKS = 12


class Head(msgspec.Struct):
    received_at: int
    key: str


HEAD = msgspec.json.Decoder(Head)


def chunks_of(path: str) -> Iterator[list[bytes]]:
    with open(path, "rb") as handle:
        chunk: list[bytes] = []
        for line in handle:
            if line.strip():
                chunk.append(line)
                if len(chunk) >= CHUNK:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk


def part_process(index: int, parts: int, path: str, conn: Connection) -> None:
    from events.envelope import decode_keeping_body
    from processors.split import Part
    from sinks.batch import Batch
    from wcs_analytics import gc_tuning, settings

    part = Part(settings.load({}).processor_config(), index)
    gc_tuning.tune()
    chunks = list(chunks_of(path))
    events = Batch()
    for n, chunk in enumerate(chunks):
        batch: list[Any] = []
        owners, own, bodies = [], [], []
        for line in chunk:
            head = HEAD.decode(line)
            owner = zlib.crc32(head.key.encode()) % parts
            owners.append(owner)
            if owner == index:
                envelope, body = decode_keeping_body(line)
                batch.append(envelope)
                own.append(envelope)
                bodies.append(body)
            else:
                batch.append({"received_at": head.received_at})
        part.feed(batch, owners)
        events.add_events(own, bodies)
        emissions = part.take_emissions()
        flushed = None
        last = n == len(chunks) - 1
        if (n + 1) % FLUSH_CHUNKS == 0 or last:
            flushed = (part.flush(windows=last), part.take_emissions(), events.events)
            events = Batch()
        conn.send((emissions, flushed))


def main(argv: list[str]) -> int:
    src = argv[argv.index("--src") + 1] if "--src" in argv else str(ROOT)
    args = [a for i, a in enumerate(argv) if a != "--src" and (i == 0 or argv[i - 1] != "--src")]
    trace, data_dir = args[0], Path(args[1])
    parts = int(args[2]) if len(args) > 2 else 2
    sys.path.insert(0, src)
    ctx = mp.get_context("fork")
    pipes, procs = [], []
    for index in range(parts):
        receive, send = ctx.Pipe(duplex=False)
        pipes.append(receive)
        procs.append(ctx.Process(target=part_process, args=(index, parts, trace, send)))
    for proc in procs:
        proc.start()  # they import and read while this process opens chDB
    from processors.alert_rules import load_rules
    from processors.alert_stage import AlertStage
    from processors.clock import wall_ms
    from processors.split import Merger
    from sinks.batch import Batch
    from sinks.client import connect
    from sinks.insert_thread import InsertThread
    from sinks.migrations import migrate
    from sinks.writer import ClickHouseWriter
    from wcs_analytics import gc_tuning, settings

    client = connect(f"chdb://{data_dir.resolve()}/chdb", "wcs")
    migrate(client, "wcs")
    writer = ClickHouseWriter(client, "wcs", max_rows=10**9, now_ms=wall_ms)
    inserts = InsertThread(writer)
    merger = Merger(settings.load({}).processor_config(), AlertStage(load_rules(None)))
    gc_tuning.tune()
    started = time.perf_counter()  # as replay's loop: after the database is open
    waited: dict[str, float] = collections.defaultdict(float)
    total = 0
    chunks = list(chunks_of(trace))
    for n, chunk in enumerate(chunks):
        stubs: list[Any] = [{"received_at": HEAD.decode(line).received_at} for line in chunk]
        t = time.perf_counter()
        messages = [conn.recv() for conn in pipes]
        waited["parts"] += time.perf_counter() - t
        merger.add([emissions for emissions, _ in messages])
        merger.feed(stubs)
        if all(flushed is not None for _, flushed in messages):
            batch = Batch()
            for _, (rows, _, events) in messages:
                batch.add_rows(rows)
                batch.add_events_columns(events)
            merger.add([flushed[1] for _, flushed in messages])
            batch.add_rows(merger.flush(windows=n == len(chunks) - 1))
            t = time.perf_counter()
            inserts.submit(batch)
            waited["previous insert"] += time.perf_counter() - t
        total += len(chunk)
    t = time.perf_counter()
    inserts.wait()
    waited["last insert"] += time.perf_counter() - t
    seconds = time.perf_counter() - started
    for proc in procs:
        proc.join()
    shown = ", ".join(f"{name} {s:.2f} s" for name, s in waited.items())
    print(f"split prototype: {total} envelopes in {seconds:.3f}s with {parts} parts ({shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
