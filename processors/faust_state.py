"""Per-partition entity state of the Faust workers, persisted in a table-like mapping.

No Faust here (unit-testable with plain dicts): a worker keeps one ``EntityPartition``
per input topic partition. It wraps the SAME ``Pipeline`` as embedded mode and writes
every state change through to its mapping (a changelog-backed Faust table), so a
restarted or rebalanced worker rebuilds exactly this object from the table
(``rebuild``), timer heap included. Table values carry their partition number: one
table spans all partitions a worker holds, a runtime adopts only its own entries.

Crash consistency (docs/worker.md#crash-consistency): the outputs of a record (rows,
window hits) are written to the table as a journal entry keyed by the record's offset
BEFORE the entity states they came with. The changelog of one partition keeps write
order, so any persisted state has its journal entry persisted too; ``rebuild`` re-sends
the journal entries of every record that may not be committed (offset >= the first
record the adopting worker receives). Rows repeat with the same version (harmless);
hits carry their entity so the window stage counts each one once.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson

from events.envelope import Envelope
from events.tables import Row
from processors.clock import TimerKey
from processors.config import ProcessorConfig
from processors.embedded import EventClock
from processors.families import family
from processors.pipeline import Pipeline

Table = MutableMapping[bytes, bytes]
Hit = tuple[str, int, tuple[str, ...], str]  # (table, received_at, dims, counter)
EntityHit = tuple[str, int, tuple[str, ...], str, str, str]  # Hit + (family, key) counting it
Output = tuple[list[Row], list[EntityHit]]


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


def journal_key(family_name: str, partition: int, offset: int) -> bytes:
    return orjson.dumps(["journal", family_name, partition, offset])


def decode_output(entry: dict[str, Any]) -> Output:
    rows: list[Row] = [(table, row) for table, row in entry["rows"]]
    hits: list[EntityHit] = [(n, t, tuple(d), c, f, k) for n, t, d, c, f, k in entry["hits"]]
    return rows, hits


class EntityPartition:
    """One input partition: a Pipeline whose entity states live in ``table``."""

    def __init__(
        self, config: ProcessorConfig, table: Table, topic: tuple[str, int], clock: EventClock
    ) -> None:
        self.table, self.clock = table, clock
        self.family, self.partition = topic
        self.hits = HitBuffer()
        self.pending: dict[TimerKey, Any] = {}  # states changed by the current record
        self.journal: dict[int, bytes] = {}  # offset -> table key, ascending
        self.pipeline = Pipeline(config, windows=self.hits, on_change=self.pending.__setitem__)

    @classmethod
    def rebuild(
        cls,
        config: ProcessorConfig,
        table: Table,
        topic: tuple[str, int],
        clock: EventClock,
        first_offset: int,
    ) -> tuple[EntityPartition, Output]:
        """Adopt the entities of ``topic`` = (family, partition) from the table (one timer
        each) and return the journaled outputs of records at or after ``first_offset``
        (the first record this worker received: everything before it is committed)."""
        family_name, partition = topic
        runtime = cls(config, table, topic, clock)
        replay: Output = ([], [])
        for tkey, raw in sorted(table.items()):
            obj = orjson.loads(raw)
            if isinstance(obj, dict):
                fam, p, offset = obj["journal"]
                if (fam, p) != topic:
                    continue
                if offset < first_offset:
                    table.pop(tkey, None)
                    continue
                runtime.journal[offset] = tkey
                rows, hits = decode_output(obj)
                replay[0].extend(rows)
                replay[1].extend(hits)
            elif obj[0] == partition and obj[1] == family_name:
                _, fam, key, state = obj
                runtime.pipeline.load((fam, key), family(fam).from_dict(state))
        runtime.journal = dict(sorted(runtime.journal.items()))
        return runtime, replay

    @property
    def open(self) -> int:
        return self.pipeline.open_entities()

    def process(self, envelope: Envelope, offset: int) -> Output:
        """Exactly ``processors.embedded.feed`` minus the sink: step, then advance."""
        rows = self.pipeline.process(envelope)
        self.clock.observe(self.pipeline.clock_ms)
        rows += self._advance(None)
        ident = (envelope["family"], envelope["key"])
        hits: list[EntityHit] = [(*hit, *ident) for hit in self.hits.take()]
        self._write(offset, rows, hits)
        return rows, hits

    def advance(self, at_least: int | None, offset: int) -> list[Row]:
        """Fire due timeouts at this partition's clock (or ``at_least`` if later)."""
        rows = self._advance(at_least)
        self._write(offset, rows, [])
        return rows

    def prune(self, committed: int) -> None:
        """Drop journal entries of records before ``committed`` (never redelivered)."""
        while self.journal:
            offset = next(iter(self.journal))
            if offset >= committed:
                return
            self.table.pop(self.journal.pop(offset), None)

    def _advance(self, at_least: int | None) -> list[Row]:
        now = self.clock.now()
        if at_least is not None:
            now = at_least if now is None else max(now, at_least)
        return [] if now is None else self.pipeline.advance(now)

    def _write(self, offset: int, rows: list[Row], hits: list[EntityHit]) -> None:
        """Journal first, then the states (see the module docstring)."""
        if rows or hits:
            key = journal_key(self.family, self.partition, offset)
            if offset in self.journal:  # redelivered after a crash: keep what it had too
                old_rows, old_hits = decode_output(orjson.loads(self.table[key]))
                rows, hits = old_rows + rows, old_hits + hits
            entry = {"journal": [self.family, self.partition, offset], "rows": rows, "hits": hits}
            self.table[key] = orjson.dumps(entry)
            self.journal[offset] = key
        for key_, state in self.pending.items():
            tkey = entity_key(key_)
            if state is None:
                self.table.pop(tkey, None)
            else:
                # orjson serializes the state dataclasses natively: the same JSON as
                # ``state.to_dict()`` (``dataclasses.asdict``) at a fraction of the cost
                self.table[tkey] = orjson.dumps([self.partition, *key_, state])
        self.pending.clear()
