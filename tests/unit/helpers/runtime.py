"""Driving a PartitionRuntime as the embedded engine does, with the state store in memory."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from events.envelope import Envelope
from processors.alert_stage import AlertStage
from processors.clock import TimerKey
from processors.config import ProcessorConfig
from processors.families import family
from processors.runtime import Checkpoint, PartitionRuntime
from processors.state_codec import dump, load


class MemoryStateStore:
    """What ``sinks.state_store`` keeps, as JSON text: the latest state per key (changed and
    evicted ones, from each checkpoint) and the partition meta."""

    def __init__(self) -> None:
        self.texts: dict[TimerKey, bytes] = {}
        self.meta: bytes | None = None

    def checkpoint(self, runtime: PartitionRuntime) -> Checkpoint:
        checkpoint = runtime.begin_checkpoint()
        for states in (checkpoint.states, checkpoint.evicted):
            for key, state in states.items():
                self.texts[key] = orjson.dumps(dump(state))
        self.meta = orjson.dumps(checkpoint.meta)
        return checkpoint

    def state(self, key: TimerKey) -> Any:
        return load(family(key[0]).state_cls, orjson.loads(self.texts[key]))

    def lookup(self, keys: Iterable[TimerKey]) -> list[tuple[TimerKey, Any]]:
        return [(key, self.state(key)) for key in sorted(keys) if key in self.texts]

    def restore(self, cfg: ProcessorConfig, stage: AlertStage | None = None) -> PartitionRuntime:
        """A fresh runtime continuing the stored state: meta, then the open states (closed ones
        are looked up when their keys come back, as ``Store.feed`` does)."""
        runtime = PartitionRuntime(cfg, stage, persistent=True)
        if self.meta is not None:
            runtime.load_meta(orjson.loads(self.meta))
        stored = [(key, self.state(key)) for key in sorted(self.texts)]
        runtime.adopt((key, state) for key, state in stored if family(key[0]).is_open(state))
        return runtime


def feed(
    runtime: PartitionRuntime,
    batch: Sequence[Envelope],
    store: MemoryStateStore | None = None,
    wall_ms: int | None = None,
) -> list[tuple[int, str]]:
    """``Store.feed``: adopt the stored states of keys not in memory, then feed."""
    if store is not None:
        runtime.adopt(store.lookup(runtime.unknown_keys(batch)))
    return runtime.feed(batch, wall_ms)


def feed_in_batches(
    runtime: PartitionRuntime,
    events: Sequence[Envelope],
    sizes: Iterable[int],
    store: MemoryStateStore | None = None,
) -> None:
    """Feed ``events`` in consecutive batches of ``sizes`` (cycled), the rest in the last one."""
    sizes = list(sizes) or [len(events)]
    start, i = 0, 0
    while start < len(events):
        size = max(1, sizes[i % len(sizes)])
        assert feed(runtime, events[start : start + size], store) == []
        start, i = start + size, i + 1
