"""Per-partition window state of the Faust workers (the window-hits stage), no Faust here.

A ``WindowPartition`` is the SAME ``WindowStore`` as embedded mode, persisted in one
table-like mapping with two kinds of entries for its partition:

* ``seen``: one per counted hit, keyed by the hit AND the entity that counted it, so a
  hit delivered again (a crash replay, a re-sent journal entry) is counted once;
* ``window``: the last emitted counts and version of a window (written on emission).

Window counts are not stored: they are the number of ``seen`` entries per window and
counter. A hit writes its ``seen`` entry before the emissions it triggers, and a
dropped window loses its ``seen`` entries before its ``window`` entry; the changelog
of one partition keeps write order, so what survives a crash is always a prefix of
these writes, and ``rebuild`` derives consistent windows from it (dirty = counts
differ from the last emitted ones). ``rebuild`` also re-emits every emitted window's
last row (same version, same counts): a row lost in the crash comes back, a row that
was not lost repeats harmlessly.
"""

from __future__ import annotations

from typing import Any

import orjson

from events.tables import Row
from processors import windows as w
from processors.clock import window_start
from processors.config import ProcessorConfig
from processors.embedded import EventClock
from processors.faust_state import EntityHit, Table
from processors.window_store import WindowStore

Slot = tuple[int, w.WindowKey]  # (window start, (table, dims))


def window_key(table: str, start: int, dims: tuple[str, ...]) -> bytes:
    """Message key of a hit and table key of a window: one window, one partition."""
    return orjson.dumps([table, start, list(dims)])


def seen_key(hit: EntityHit, start: int) -> bytes:
    name, _, dims, counter, fam, key = hit
    return orjson.dumps(["seen", name, start, list(dims), counter, fam, key])


class WindowPartition:
    """One window-hits partition: a WindowStore whose windows live in ``table``."""

    def __init__(
        self, config: ProcessorConfig, table: Table, partition: int, clock: EventClock
    ) -> None:
        self.config, self.table, self.partition, self.clock = config, table, partition, clock
        self.store = WindowStore(config, on_change=self._persist)
        self.members: dict[Slot, list[bytes]] = {}  # window -> its seen entries' keys

    @classmethod
    def rebuild(
        cls, config: ProcessorConfig, table: Table, partition: int, clock: EventClock
    ) -> tuple[WindowPartition, list[Row]]:
        """Adopt this partition's windows; returns the last row of every emitted one."""
        runtime = cls(config, table, partition, clock)
        counts: dict[Slot, dict[str, int]] = {}
        emitted: dict[Slot, tuple[dict[str, int], int]] = {}
        latest: int | None = None
        for tkey, raw in list(table.items()):
            obj = orjson.loads(raw)
            if obj[0] != partition:
                continue
            _, kind, start, name, dims, *rest = obj
            slot: Slot = (start, (name, tuple(dims)))
            if kind == "seen":
                counter, received_at = rest
                window = counts.setdefault(slot, {})
                window[counter] = window.get(counter, 0) + 1
                runtime.members.setdefault(slot, []).append(tkey)
                latest = received_at if latest is None else max(latest, received_at)
            else:
                emitted[slot] = (rest[0], rest[1])
        clock.observe(latest)
        return runtime, runtime._adopt(counts, emitted)

    def _adopt(
        self, counts: dict[Slot, dict[str, int]], emitted: dict[Slot, tuple[dict[str, int], int]]
    ) -> list[Row]:
        now, cfg = self.clock.now(), self.config
        rows: list[Row] = []
        for slot in sorted(counts.keys() | emitted.keys()):
            start, key = slot
            if now is not None and now > start + cfg.window_ms + cfg.window_retention_ms:
                self._persist(start, key, None)  # a drop the crash interrupted
                continue
            last_counts, version = emitted.get(slot, ({}, 0))
            held = counts.get(slot, {})
            self.store.load(start, key, w.Window(held, version, held != last_counts))
            if version:
                rows.append(w.render(start, key, w.Window(last_counts, version, False)))
        self.store.watermark = now
        return rows

    def _persist(self, start: int, key: w.WindowKey, window: w.Window | None) -> None:
        name, dims = key
        if window is None:
            for tkey in self.members.pop((start, key), []):
                self.table.pop(tkey, None)
            self.table.pop(window_key(name, start, dims), None)
        elif not window.dirty:  # emitted; counting hits writes only seen entries
            value: list[Any] = [self.partition, "window", start, name, list(dims)]
            self.table[window_key(name, start, dims)] = orjson.dumps(
                [*value, window.counts, window.version]
            )

    def hit(self, hit: EntityHit) -> list[Row]:
        """Count one hit once (event time = its received_at), then emit due windows."""
        name, received_at, dims, counter, _, _ = hit
        start = window_start(received_at, self.config.window_ms)
        skey = seen_key(hit, start)
        if skey not in self.table and self.store.add(name, received_at, dims, counter):
            value = [self.partition, "seen", start, name, list(dims), counter, received_at]
            self.table[skey] = orjson.dumps(value)
            self.members.setdefault((start, (name, dims)), []).append(skey)
        self.clock.observe(received_at)
        return self.advance(None)

    def advance(self, at_least: int | None) -> list[Row]:
        now = self.clock.now()
        if at_least is not None:
            now = at_least if now is None else max(now, at_least)
        return [] if now is None else self.store.advance(now)

    def flush(self) -> list[Row]:
        return self.store.flush()
