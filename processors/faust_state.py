"""Per-partition processing state of the Faust workers, persisted in table-like mappings.

No Faust here (unit-testable with plain dicts): a worker keeps one ``EntityPartition``
per input topic partition and one ``WindowPartition`` per window-hits partition. Each
wraps the SAME code as embedded mode (``Pipeline``, ``WindowStore``) and writes every
state change through to its mapping (a changelog-backed Faust table), so a restarted
or rebalanced worker rebuilds exactly this object from the table (``rebuild``), timer
heap included. Table values carry their partition number: one table spans all
partitions a worker holds, a runtime adopts only its own entries.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson

from events.envelope import Envelope
from events.tables import Row
from processors import windows as w
from processors.clock import TimerKey
from processors.config import ProcessorConfig
from processors.embedded import EventClock
from processors.families import family
from processors.pipeline import Pipeline
from processors.window_store import WindowStore

Table = MutableMapping[bytes, bytes]
Hit = tuple[str, int, tuple[str, ...], str]  # (table, received_at, dims, counter)


class HitBuffer:
    """A WindowSink that only collects hits; the worker forwards them to the window stage."""

    late_dropped = 0

    def __init__(self) -> None:
        self.hits: list[Hit] = []

    def add(self, table: str, received_at: int, dims: tuple[str, ...], counter: str) -> bool:
        self.hits.append((table, received_at, dims, counter))
        return True

    def advance(self, now_ms: int) -> list[Row]:
        return []

    def flush(self) -> list[Row]:
        return []

    def take(self) -> list[Hit]:
        hits, self.hits = self.hits, []
        return hits


def entity_key(key: TimerKey) -> bytes:
    return orjson.dumps(list(key))


def window_key(table: str, start: int, dims: tuple[str, ...]) -> bytes:
    """Message key of a hit and table key of a window: one window, one partition."""
    return orjson.dumps([table, start, list(dims)])


class EntityPartition:
    """One input partition: a Pipeline whose entity states live in ``table``."""

    def __init__(
        self, config: ProcessorConfig, table: Table, partition: int, clock: EventClock
    ) -> None:
        self.table, self.partition, self.clock = table, partition, clock
        self.hits = HitBuffer()
        self.pipeline = Pipeline(config, windows=self.hits, on_change=self._persist)

    @classmethod
    def rebuild(
        cls,
        config: ProcessorConfig,
        table: Table,
        topic: tuple[str, int],
        clock: EventClock,
    ) -> EntityPartition:
        """Adopt the entities of ``topic`` = (family, partition) from the table (one
        timer each); the table holds every family and partition this worker has."""
        family_name, partition = topic
        runtime = cls(config, table, partition, clock)
        for raw in list(table.values()):
            p, fam, key, state = orjson.loads(raw)
            if p == partition and fam == family_name:
                runtime.pipeline.load((fam, key), family(fam).from_dict(state))
        return runtime

    @property
    def open(self) -> int:
        return self.pipeline.open_entities()

    def _persist(self, key: TimerKey, state: Any) -> None:
        tkey = entity_key(key)
        if state is None:
            self.table.pop(tkey, None)
        else:
            self.table[tkey] = orjson.dumps([self.partition, *key, state.to_dict()])

    def process(self, envelope: Envelope) -> tuple[list[Row], list[Hit]]:
        """Exactly ``processors.embedded.feed`` minus the sink: step, then advance."""
        rows = self.pipeline.process(envelope)
        self.clock.observe(self.pipeline.clock_ms)
        return rows + self.advance(None), self.hits.take()

    def advance(self, at_least: int | None) -> list[Row]:
        """Fire due timeouts at this partition's clock (or ``at_least`` if later)."""
        now = self.clock.now()
        if at_least is not None:
            now = at_least if now is None else max(now, at_least)
        return [] if now is None else self.pipeline.advance(now)


class WindowPartition:
    """One window-hits partition: a WindowStore whose windows live in ``table``."""

    def __init__(
        self, config: ProcessorConfig, table: Table, partition: int, clock: EventClock
    ) -> None:
        self.table, self.partition, self.clock = table, partition, clock
        self.store = WindowStore(config, on_change=self._persist)

    @classmethod
    def rebuild(
        cls, config: ProcessorConfig, table: Table, partition: int, clock: EventClock
    ) -> WindowPartition:
        runtime = cls(config, table, partition, clock)
        for raw in list(table.values()):
            p, start, name, dims, counts, version, dirty = orjson.loads(raw)
            if p == partition:
                runtime.store.load(start, (name, tuple(dims)), w.Window(counts, version, dirty))
        return runtime

    def _persist(self, start: int, key: w.WindowKey, window: w.Window | None) -> None:
        name, dims = key
        tkey = window_key(name, start, dims)
        if window is None:
            self.table.pop(tkey, None)
            return
        value = [self.partition, start, name, list(dims), window.counts]
        self.table[tkey] = orjson.dumps([*value, window.version, window.dirty])

    def hit(self, hit: Hit) -> list[Row]:
        """Count one hit (event time = its received_at), then emit due windows."""
        name, received_at, dims, counter = hit
        self.store.add(name, received_at, dims, counter)
        self.clock.observe(received_at)
        return self.advance(None)

    def advance(self, at_least: int | None) -> list[Row]:
        now = self.clock.now()
        if at_least is not None:
            now = at_least if now is None else max(now, at_least)
        return [] if now is None else self.store.advance(now)

    def flush(self) -> list[Row]:
        return self.store.flush()
