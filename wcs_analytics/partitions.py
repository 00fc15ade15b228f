"""The Kafka worker's engine: one partition runtime per input partition, one writer.

The crash story (docs/worker.md#crash-consistency), one mechanism: each input partition's
stored state (``entity_state``, written in the same INSERT as its entities, after the rows
they describe) records the input offset it has applied. A record at or below that offset
is skipped, so whatever Kafka re-delivers after a crash, a rebalance or a commit that lagged
behind, every record is applied exactly once to the stored state; rows re-rendered from
the same state are identical. Kafka offsets are committed only after that insert (the
Faust adapter acks then), so they never run ahead of the stored state.

Not thread-safe: the Faust agent's coroutine calls everything; inserts and the IO-bound
loads run in threads the adapter awaits.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from events.envelope import EnvelopeError
from events.records import split_batch
from events.tables import Row
from ingest.config import DEFAULT_REDACT_KEYS
from ingest.redact import redact
from processors.clock import EventClock, wall_ms
from processors.families import family
from processors.runtime import PartitionRuntime
from sinks import freshness, window_totals
from sinks.client import connect
from sinks.insert_thread import InsertThread
from sinks.migrations import migrate
from sinks.state_store import StateStore, load_many
from sinks.writer import ClickHouseWriter
from wcs_analytics import gc_tuning
from wcs_analytics.settings import Settings

log = logging.getLogger(__name__)

FRESHNESS_LOG_S = 10.0
DeadLetter = tuple[str, bytes]  # (reason, the dead-letter record: JSON, secrets removed)
REDACT = frozenset(key.lower() for key in DEFAULT_REDACT_KEYS)


@dataclass
class Partition:
    """One input partition: its runtime, its stored state, how far it has applied."""

    name: str  # "<topic>/<partition>", the ``part`` of its state rows
    runtime: PartitionRuntime
    store: StateStore
    clock: EventClock
    applied: int = -1  # the last input offset folded into the runtime
    envelopes: int = 0

    def meta(self) -> dict[str, Any]:
        return self.runtime.meta() | {"offset": self.applied}


@dataclass
class Progress:
    processed: int = 0
    skipped_records: int = 0  # at or below the stored offset (re-delivered)
    dead: Counter[str] = field(default_factory=Counter)


class PartitionEngine:
    def __init__(self, settings: Settings, follow_wall: bool, now: Callable[[], int] = wall_ms):
        self.settings, self.follow_wall, self._now = settings, follow_wall, now
        self.client = connect(settings.dsn, settings.database)
        migrate(self.client, settings.database, cluster=settings.clickhouse_cluster)
        self.writer = ClickHouseWriter(
            self.client,
            settings.database,
            max_rows=settings.batch_rows,
            max_interval_ms=settings.batch_interval_ms,
            now_ms=now,
            dead_letter=settings.data_dir / "dead-letter.ndjson",
        )
        self._reader = connect(settings.dsn, settings.database)
        self.inserts = InsertThread(self.writer)
        self.flushes = 0
        self._fresh_at, self._fresh_counts = time.monotonic(), list[int]()
        self._crash = _crash_point(settings.crash_after)
        if self._crash[0] == "rows":
            self.writer.before_state = lambda: self._maybe_crash("rows")
        self.parts: dict[str, Partition] = {}
        # windows whose totals must be summed again at the next flush: a crash between a
        # partial's insert and its totals leaves them stale, so an adopted partition's held
        # windows are summed again once
        self._retotal: dict[str, set[int]] = {}
        self.progress = Progress()
        self.dead: list[DeadLetter] = []  # the adapter sends them to the dead-letter topic
        gc_tuning.tune()

    # ---- assignment ------------------------------------------------------------------

    def assign(self, names: list[str]) -> list[Partition]:
        """Load the stored state of input partitions ``names``, all in one read (IO: call in
        a thread)."""
        stores = [StateStore(self._reader, self.settings.database, n, self._now) for n in names]
        loaded = load_many(stores)
        parts = []
        for store in stores:
            meta, states = loaded[store.part]
            runtime = PartitionRuntime(self.settings.processor_config(), persistent=True)
            part = Partition(store.part, runtime, store, EventClock(self.follow_wall, self._now))
            if meta is not None:
                runtime.load_meta(meta)
                part.applied = int(meta.get("offset", -1))
                part.clock.observe(runtime.clock)
            runtime.adopt(states)
            log.info(
                "adopted %s: offset %d, %d open entities, clock %s",
                part.name, part.applied, runtime.open_entities(), runtime.clock,
            )  # fmt: skip
            parts.append(part)
        return parts

    def add(self, part: Partition) -> None:
        self.parts[part.name] = part
        for start, bucket in part.runtime.windows.buckets.items():
            for table, _ in bucket:
                self._retotal.setdefault(table, set()).add(start)

    def revoke(self, names: list[str]) -> None:
        """Forget partitions taken away: what they did not flush, their next owner redoes
        from the stored offset."""
        for name in names:
            self.parts.pop(name, None)

    # ---- input -----------------------------------------------------------------------

    def feed(self, name: str, offset: int, value: bytes) -> None:
        """Fold one input record (skipped when at or below the stored offset)."""
        part = self.parts[name]
        if offset <= part.applied:
            self.progress.skipped_records += 1
            return
        part.applied = offset
        try:
            envelopes, bodies, bad = split_batch(value)
        except EnvelopeError as exc:
            self._dead(str(exc), name, offset, value)
            return
        for problem, item in bad:
            self._dead(problem, name, offset, orjson.dumps(item))
        runtime = part.runtime
        keys = runtime.keys_of(envelopes)
        unknown = runtime.unknown_keys(envelopes, keys)
        if unknown:
            runtime.adopt(part.store.lookup(unknown))
        wall = self._now() if self.follow_wall else None
        rejected = runtime.feed(envelopes, wall, keys)
        for index, reason in rejected:
            received_at = envelopes[index]["received_at"]
            problem = f"implausible received_at {received_at!r:.40} ({reason})"
            self._dead(problem, name, offset, orjson.dumps(envelopes[index]))
        if rejected:
            skip = {index for index, _ in rejected}
            envelopes = [env for i, env in enumerate(envelopes) if i not in skip]
            bodies = [body for i, body in enumerate(bodies) if i not in skip]
        self.writer.add_events(envelopes, bodies)
        part.clock.observe(runtime.clock)
        part.envelopes += len(envelopes)
        self.progress.processed += len(envelopes)

    def _dead(self, reason: str, name: str, offset: int, value: bytes) -> None:
        """Keep the reason, where it came from and, when it is JSON, its content with the
        secret keys removed (not JSON: by position only, it could hold anything)."""
        kind = reason.split(":")[0]
        self.progress.dead[kind] += 1
        if self.progress.dead[kind] == 1:
            log.error("dead-lettered input at %s offset %d: %s", name, offset, reason[:300])
        try:
            content = redact(orjson.loads(value), REDACT)
        except orjson.JSONDecodeError:
            content = None
        topic, partition = name.rsplit("/", 1)
        letter = {"table": "envelope", "reason": reason, "row": content, "topic": topic,
                  "partition": int(partition), "offset": offset}  # fmt: skip
        self.dead.append((reason, orjson.dumps(letter)))

    def tick(self) -> None:
        """Wall time passed: quiet partitions advance (timeouts, windows) when following it."""
        if not self.follow_wall:
            return
        for part in self.parts.values():
            now = part.clock.now()
            if now is not None:
                part.runtime.advance(now)

    def advance_all(self) -> None:
        """End of input: every partition to the latest clock of this worker (as embedded
        ``finish`` leaves one clock for everything)."""
        clocks = [p.runtime.clock for p in self.parts.values() if p.runtime.clock is not None]
        if clocks:
            for part in self.parts.values():
                part.runtime.advance(max(clocks))

    # ---- output ----------------------------------------------------------------------

    def due(self) -> bool:
        """Rows pending long or many enough, or a partition changed without input (timeouts,
        a quiet minute's windows) and the flush interval passed."""
        writer = self.writer
        if writer.due():
            return True
        changed = any(part.runtime.changed for part in self.parts.values())
        return changed and writer.interval_passed(writer.last_take)

    def nothing_pending(self) -> bool:
        """No rows waiting and no partition changed since the last flush."""
        changed = any(part.runtime.changed for part in self.parts.values())
        return self.writer.pending == 0 and not changed

    def freshness_line(self, force: bool = False) -> str | None:
        """Every ``FRESHNESS_LOG_S`` with new ``events`` rows: hook received -> row inserted
        for the rows inserted since the last line, plus the cumulative bucket counts
        (sinks/freshness.py), as ``freshness {...}``; None when not due."""
        now = time.monotonic()
        if not force and now - self._fresh_at < FRESHNESS_LOG_S:
            return None
        counts = list(self.writer.freshness.counts)
        before = self._fresh_counts or [0] * len(counts)
        delta = [a - b for a, b in zip(counts, before, strict=True)]
        window, self._fresh_at, self._fresh_counts = now - self._fresh_at, now, counts
        if not sum(delta):
            return None
        line = {"window_s": round(window, 1), **freshness.summary(delta), "counts": counts}
        return "freshness " + orjson.dumps(line).decode()

    def progress_line(self) -> str:
        p = self.progress
        return (
            f"processed {p.processed} envelopes in {len(self.parts)} partitions, "
            f"{p.skipped_records} re-delivered records skipped, "
            f"{sum(p.dead.values())} dead-lettered, {self.writer.pending} rows pending"
        )

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until the last flush is written (or ``timeout``); True when it is."""
        return self.inserts.wait(timeout)

    def flush(self, after: Callable[[], None] | None = None, windows: bool = True) -> None:
        """Render, checkpoint and hand everything to the insert thread (waits while the
        previous flush is in flight); ``after`` runs once it is all written."""
        self.inserts.wait()
        touched, self._retotal = self._retotal, {}
        stores: list[tuple[StateStore, list[dict[str, Any]]]] = []
        for part in self.parts.values():
            rows = part.runtime.flush(windows)
            self.writer.add(_partials(rows, part.name, touched))
            checkpoint = part.runtime.begin_checkpoint()
            checkpoint.meta = part.meta()
            state = part.store.rows_for(checkpoint, _is_open)
            self.writer.add_state(state)
            stores.append((part.store, state))
        batch = self.writer.take()
        self.flushes += 1

        def written() -> None:
            self._maybe_crash("state")
            for store, state in stores:
                store.written(state)
            window_totals.refresh(self.client, self.settings.database, touched)
            if after is not None:
                after()

        self.inserts.submit(batch, written)

    def _maybe_crash(self, point: str) -> None:
        """Crash tests (``--crash-after``): die like a SIGKILL at this point of a flush."""
        if self._crash == (point, self.flushes):
            log.warning("crash test: exiting after the %s of flush %d", point, self.flushes)
            os._exit(137)

    def close(self, timeout: float = 30.0) -> bool:
        """Stop the insert thread; False when something could not be written in time (the
        next owner redoes it from the stored offsets)."""
        left = self.inserts.close(timeout)
        self._reader.close()
        self.client.close()
        return left is None


def _crash_point(text: str) -> tuple[str, int]:
    point, _, count = text.partition(":")
    return (point, int(count)) if point else ("", 0)


def _partials(rows: list[Row], part: str, touched: dict[str, set[int]]) -> list[Row]:
    """Window rows become this partition's partial counts; other rows pass unchanged."""
    out: list[Row] = []
    for table, values in rows:
        if table in window_totals.WINDOW_TABLES:
            touched.setdefault(table, set()).add(values["window_start"])
            out.append((f"{table}_parts", values | {"part": part}))
        else:
            out.append((table, values))
    return out


def _is_open(key: tuple[str, str], state: Any) -> bool:
    return family(key[0]).is_open(state)
