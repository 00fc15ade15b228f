"""The processing pipeline: routes envelopes to their entity state, counts status
hits into windows and fires event-time timeouts from a deadline heap.

Single-threaded and IO-free; the embedded runner (and later the Faust agents) own
the loop: ``process`` every envelope, ``advance`` the event clock, ``flush`` at the
end, ``snapshot``/``restore`` to checkpoint. See docs/processing.md#pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from events.envelope import Envelope
from events.tables import Row
from processors import core as c
from processors.clock import TimerKey, Timers
from processors.config import ProcessorConfig
from processors.families import family
from processors.messages import MessageState
from processors.window_store import WindowSink, WindowStore

SNAPSHOT_VERSION: Final = 1

OnChange = Callable[[TimerKey, Any], None]  # (key, new state or None once evicted)


class Pipeline:
    """``windows``: where status hits go (default: a local ``WindowStore``; the Faust
    workers pass a buffer that forwards hits to the window stage). ``on_change`` is
    called after every entity state change (None: evicted) so a caller can persist it.
    """

    def __init__(
        self,
        config: ProcessorConfig,
        windows: WindowSink | None = None,
        on_change: OnChange | None = None,
    ) -> None:
        self.config = config.validate()
        self._states: dict[TimerKey, Any] = {}
        self._timers = Timers()
        self._windows: WindowSink = windows if windows is not None else WindowStore(config)
        self._on_change = on_change
        self._clock: int | None = None
        self._open = 0

    @property
    def clock_ms(self) -> int | None:
        """Highest ``received_at`` processed so far."""
        return self._clock

    @property
    def late_dropped(self) -> int:
        """Window hits dropped because their window was already past retention."""
        return self._windows.late_dropped

    def open_entities(self) -> int:
        """Calls, streams, messages and connections not closed yet (for metrics)."""
        return self._open

    def process(self, envelope: Envelope) -> list[Row]:
        """Step the envelope's entity and count its new statuses; fires no timeouts."""
        t = envelope["received_at"]
        self._clock = t if self._clock is None else max(self._clock, t)
        key = (envelope["family"], envelope["key"])
        old = self._states.get(key)
        new, rows = family(key[0]).step(old, envelope, self.config)
        self._store(key, old, new)
        self._count(envelope, old, new)
        return rows

    def advance(self, now_ms: int) -> list[Row]:
        """Fire every timeout due at ``now_ms`` (heap order), evict closed state past
        retention, then emit due windows. Touches only due entities."""
        rows: list[Row] = []
        for key in self._timers.pop_due(now_ms, self._due):
            fam, state = family(key[0]), self._states[key]
            if fam.is_open(state):
                new, emitted = fam.expire(state, now_ms, self.config)
                rows += emitted
                self._store(key, state, new)
            else:
                del self._states[key]
                if self._on_change is not None:
                    self._on_change(key, None)
        return rows + self._windows.advance(now_ms)

    def flush(self) -> list[Row]:
        """End of input: emit every window changed since its last emission."""
        return self._windows.flush()

    def load(self, key: TimerKey, state: Any) -> None:
        """Adopt a persisted entity state (restore): schedules its timer, no callback."""
        self._put(key, None, state)

    def _due(self, key: TimerKey) -> int | None:
        state = self._states.get(key)
        return None if state is None else family(key[0]).due(state, self.config)

    def _store(self, key: TimerKey, old: Any, new: Any) -> None:
        self._put(key, old, new)
        if self._on_change is not None and new is not old:
            self._on_change(key, new)

    def _put(self, key: TimerKey, old: Any, new: Any) -> None:
        fam = family(key[0])
        self._states[key] = new
        self._open += int(fam.is_open(new)) - int(old is not None and fam.is_open(old))
        self._timers.schedule(key, fam.due(new, self.config))

    def _count(self, env: Envelope, old: Any, new: Any) -> None:
        """A status counts once per entity, in the minute of the event that first brought it."""
        t, fam = env["received_at"], env["family"]
        app_key, node_id = _scope(env, new)
        for status in sorted(new.statuses - (old.statuses if old is not None else frozenset())):
            self._windows.add("status_counts", t, (fam, status, app_key, node_id), "count")
        if isinstance(new, MessageState):
            before = old.marks if isinstance(old, MessageState) else frozenset()
            for mark in sorted(new.marks - before):
                self._windows.add("message_rates", t, (app_key, node_id), mark)

    def snapshot(self) -> bytes:
        """All state (entities, windows, clock) as orjson bytes; timers are derived from
        entity states on restore (one per entity, at its current due time)."""
        entities = [[fam, key, state.to_dict()] for (fam, key), state in self._states.items()]
        return orjson.dumps(
            {
                "v": SNAPSHOT_VERSION,
                "clock_ms": self._clock,
                "entities": entities,
                "windows": _windows_dict(self._windows),
            }
        )

    @classmethod
    def restore(cls, config: ProcessorConfig, data: bytes) -> Pipeline:
        """A pipeline that continues exactly where ``snapshot`` stopped (same config)."""
        obj = orjson.loads(data)
        if obj.get("v") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported pipeline snapshot version {obj.get('v')!r}")
        pipeline = cls(config)
        pipeline._clock = obj["clock_ms"]
        pipeline._windows = WindowStore.from_dict(config, obj["windows"])
        for fam, name, state in obj["entities"]:
            pipeline.load((fam, name), family(fam).from_dict(state))
        return pipeline


def _windows_dict(windows: WindowSink) -> dict[str, Any]:
    if not isinstance(windows, WindowStore):
        raise TypeError("snapshot needs the pipeline's own WindowStore")
    return windows.to_dict()


def _scope(env: Envelope, state: Any) -> tuple[str, str]:
    """(app_key, node_id) of the event, falling back to the entity's."""
    core = getattr(state, "core", None)
    app_key = env["app_key"] or (c.field(core, "app_key", "") if core else "")
    node_id = env["node_id"] or (c.field(core, "node_id", "") if core else "")
    return app_key, node_id
