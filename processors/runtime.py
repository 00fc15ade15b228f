"""The partition runtime: one place where a partition's state, versions, timeouts and windows live.

Every path drives it the same way (embedded ``run``, ``replay``, spool replay, the Kafka
worker): ``feed(batch)`` folds envelopes into mutable per-entity states, ``flush()``
renders each changed entity's row once, ``begin_checkpoint()`` hands over what must be
persisted. Per event it does only the rule itself; per batch and per flush the rest.
Pure: no IO, no wall clock (time is an argument). docs/processing.md#runtime.

Event order semantics are per event whatever the batching: an event is applied, then
the clock moves to its ``received_at`` (if later), then the timeouts due at that clock
fire and the windows due at it are emitted to the window stage (which evaluates alerts
there), so feeding one batch or many gives the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from events.envelope import Envelope
from events.tables import Row
from processors import messages, streams
from processors.alert_stage import AlertStage
from processors.clock import TimerKey, Timers
from processors.config import ProcessorConfig
from processors.entity import field as entity_field
from processors.families import FAMILIES, SIDE, Family, entity_key, family
from processors.windows import WindowCounts

MESSAGE: Final = FAMILIES["message"]
STREAM: Final = FAMILIES["stream"]
EARLIEST_MS: Final = 946_684_800_000  # 2000-01-01: earlier times are not milliseconds
LATEST_MS: Final = 4_102_444_800_000  # 2100-01-01: later times are not milliseconds
TICK_KEY: Final[tuple[str | None, str]] = (None, "tick")  # not owned: moves the clock only


@dataclass
class Checkpoint:
    """What ``begin_checkpoint`` hands over: changed states (evicted ones included, the
    caller persists them before they are forgotten) and the partition's own state."""

    states: dict[TimerKey, Any]
    evicted: dict[TimerKey, Any]
    meta: dict[str, Any]


@dataclass
class RuntimeCounts:
    rejected: Counter[str] = field(default_factory=Counter)  # implausible envelopes
    skipped: Counter[str] = field(default_factory=Counter)  # kept in events, no entity
    reused: int = 0  # keys that started a new session (incarnation)
    evicted: int = 0
    adopted: int = 0  # states brought back from the state store


class PartitionRuntime:
    """Mutable state of one partition. Not thread-safe: one owner thread calls everything.

    ``stage``: the alert stage fed with this partition's window rows (embedded: the whole
    input is one partition); None when windows are merged elsewhere (Kafka workers).
    ``persistent``: evicted states are handed to ``begin_checkpoint`` for the state store
    (and found there again); without it they are simply forgotten.
    """

    def __init__(
        self,
        cfg: ProcessorConfig,
        stage: AlertStage | None = None,
        persistent: bool = False,
    ) -> None:
        self.cfg = cfg.validate()
        self.stage = stage
        self.persistent = persistent
        self.states: dict[TimerKey, Any] = {}
        self.timers = Timers()
        self.windows = WindowCounts(cfg.window_ms, cfg.window_lateness_ms, cfg.window_retention_ms)
        self.clock: int | None = None
        self.counts = RuntimeCounts()
        self._dirty: dict[TimerKey, Any] = {}  # rows to render at the next flush
        self._retired: list[tuple[Family, Any]] = []  # replaced incarnations, last row due
        self._unsaved: dict[TimerKey, Any] = {}  # changed since the last checkpoint
        self._evicting: dict[TimerKey, Any] = {}  # out of memory once checkpointed
        self._pending: list[Row] = []  # window and alert rows waiting for the flush
        self._next_due: int | None = None  # clock at which windows or the stage need a look
        self._open = 0

    # ---- feeding ----------------------------------------------------------------------

    @staticmethod
    def keys_of(
        batch: Iterable[Envelope], owned: Sequence[bool] | None = None
    ) -> list[tuple[str | None, str]]:
        """``entity_key`` of each envelope (computed once, for ``unknown_keys`` and ``feed``);
        with ``owned``, only of the owned ones (the others get ``TICK_KEY``)."""
        if owned is None:
            return [entity_key(env) for env in batch]
        return [entity_key(env) if own else TICK_KEY for env, own in zip(batch, owned, strict=True)]

    def unknown_keys(
        self, batch: Sequence[Envelope], keys: Sequence[tuple[str | None, str]] | None = None
    ) -> set[TimerKey]:
        """Keys of the batch that are not in memory (candidates for a state-store lookup)."""
        found: set[TimerKey] = set()
        states, evicting = self.states, self._evicting
        for env, (key, _) in zip(batch, keys or self.keys_of(batch), strict=True):
            if key is not None:
                skey = (env["family"], key)
                if skey not in states and skey not in evicting:
                    found.add(skey)
        return found

    def adopt(self, states: Iterable[tuple[TimerKey, Any]]) -> None:
        """Take states back from the state store (closed ones evicted earlier, or open ones
        at start). A key already in memory keeps its in-memory state."""
        for key, state in states:
            if key in self.states or key in self._evicting:
                continue
            self._put(key, state)
            self.counts.adopted += 1

    def feed(
        self,
        batch: Sequence[Envelope],
        wall_ms: int | None = None,
        keys: Sequence[tuple[str | None, str]] | None = None,
        owned: Sequence[bool] | None = None,
    ) -> list[tuple[int, str]]:
        """Fold a batch in order. Returns (index, reason) of rejected envelopes: times that
        are not plausible epoch milliseconds (never applied, never moving the clock).
        ``wall_ms``: the wall clock, when there is one, to reject times far in the future;
        ``keys``: ``keys_of(batch, owned)`` when the caller has it already; ``owned``: which
        envelopes are this runtime's (``processors.split``). The others only move the clock
        (only their ``received_at`` is read), as they would in one runtime fed everything."""
        rejected: list[tuple[int, str]] = []
        heap = self.timers.heap
        if keys is None:
            keys = self.keys_of(batch, owned)
        for index, env in enumerate(batch):
            t = _time_of(env)  # checked here: input may carry anything
            clock = self.clock
            own = owned is None or owned[index]
            if not (
                type(t) is int
                and EARLIEST_MS <= t <= LATEST_MS
                and (clock is None or t <= clock + self.cfg.max_clock_jump_ms)
                and (wall_ms is None or t <= wall_ms + self.cfg.max_future_ms)
            ):
                if own:
                    problem = self._implausible(t, wall_ms)
                    rejected.append((index, problem))
                    self.counts.rejected[problem] += 1
                continue
            if own:
                self._apply(env, t, keys[index])
            if clock is None or t > clock:  # inlined _tick: this runs for most events
                self.clock = t
                if heap and heap[0][0] <= t:
                    self._fire(t)
                if self._next_due is not None and self._next_due <= t:
                    self._windows_due(t)
        return rejected

    def advance(self, now_ms: int) -> None:
        """Move the clock to ``now_ms`` without input (wall-clock time while input is quiet)."""
        if self.clock is None or now_ms > self.clock:
            self._tick(now_ms)

    def _implausible(self, t: Any, wall_ms: int | None) -> str:
        if type(t) is not int or t < EARLIEST_MS or t > LATEST_MS:
            return "time_not_epoch_ms"
        if wall_ms is not None and t > wall_ms + self.cfg.max_future_ms:
            return "time_in_future"
        return "time_jump"

    def _apply(self, env: Envelope, t: int, keyed: tuple[str | None, str]) -> None:
        key, reason = keyed
        if key is None:
            self.counts.skipped[reason] += 1
            return
        fam = FAMILIES.get(env["family"], SIDE)
        skey = (env["family"], key)
        state: Any = self.states.get(skey)
        fresh = state is None or not fam.is_open(state)
        if fresh:  # new, evicted or closed: the lifecycle rules decide (rare path)
            state = self._state_for(skey, fam, env, t)
            if state is None:
                self.counts.skipped["too_late"] += 1
                return
            was_open = fam.is_open(state)
        else:
            was_open = True
        marks = messages.marks(state) if fam is MESSAGE else None
        before = state.changes
        later = t > state.last_event_at
        new = fam.apply(state, env, self.cfg)
        if state.changes == before and new is None:
            return
        self._dirty[skey] = self._unsaved[skey] = state
        now_open = fam.is_open(state)
        if now_open != was_open and fam is not SIDE:
            self._open += 1 if now_open else -1
        # a due only moves earlier for a new, closing or out-of-order entity, or a stream
        # at its first keep-alive; otherwise the heap entry catches up when popped
        if (
            fresh
            or not now_open
            or not later
            or (fam is STREAM and streams.first_keepalive(state, env))
        ):
            self.timers.schedule(skey, self._due_of(fam, state))
        if new is not None or marks is not None:
            self._count(env, fam, state, new, marks)

    def _state_for(self, skey: TimerKey, fam: Family, env: Envelope, t: int) -> Any:
        """The state an event applies to when it has none open: a fresh one, one evicted
        but not yet checkpointed, the closed one, or a new incarnation (key reuse). None:
        too late for a family whose table has no incarnation (messages, side families): a
        new row would replace the complete one."""
        state = self.states.get(skey)
        if state is None:
            state = self._evicting.pop(skey, None)
            if state is not None:  # back in memory: it needs its eviction timer again
                self._put(skey, state)
        incarnation = 0
        if state is not None and self._starts_again(fam, state, env, t):
            if not fam.reusable:
                return None
            self._retired.append((fam, state))
            self.counts.reused += 1
            state, incarnation = None, t
        if state is None:
            state = fam.state_cls(skey[1], t, incarnation)
            self._put(skey, state)
        return state

    def _starts_again(self, fam: Family, state: Any, env: Envelope, t: int) -> bool:
        """Key reuse (docs/processing.md#lifecycle): a session-starting hook long after the
        session with this key ended by its terminal event, or any event after retention."""
        closed = fam.closed_at(state)
        if closed is None:
            return False
        if t > closed + self.cfg.late_event_retention_ms:
            return True
        ended_by_event = getattr(state, "latest_terminal", None) is not None
        return (
            fam.reusable
            and ended_by_event
            and env["method"] in fam.starts
            and t > closed + self.cfg.key_reuse_gap_ms
        )

    def _count(self, env: Envelope, fam: Family, state: Any, new: str | None, marks: Any) -> None:
        """A status counts once per entity, in the minute of the event that first brought it."""
        t, clock = env["received_at"], self.clock
        app_key = env["app_key"] or _scope(state, "app_key")
        node_id = env["node_id"] or _scope(state, "node_id")
        counted = False
        if new is not None:
            dims = (env["family"], new, app_key, node_id)
            counted = self.windows.add("status_counts", t, dims, "count", clock)
        if marks is not None:
            for mark in sorted(messages.marks(state) - marks):
                counted = self.windows.add("message_rates", t, (app_key, node_id), mark, clock)
        if counted:  # that window is due at its end + lateness; due() recomputes the rest
            cfg = self.cfg
            due = t - t % cfg.window_ms + cfg.window_ms + cfg.window_lateness_ms + 1
            if self._next_due is None or due < self._next_due:
                self._next_due = due

    # ---- the clock -------------------------------------------------------------------

    def _tick(self, now: int) -> None:
        self.clock = now
        timers = self.timers
        if timers.next_due is not None and timers.next_due <= now:
            self._fire(now)
        if self._next_due is not None and self._next_due <= now:
            self._windows_due(now)

    def _fire(self, now: int) -> None:
        for key in self.timers.pop_due(now, self._current_due):
            fam, state = family(key[0]), self.states[key]
            if fam.is_open(state):
                if fam.expire(state, now, self.cfg):
                    self._open -= int(fam is not SIDE)
                    self._changed(key, state)
                self.timers.schedule(key, self._due_of(fam, state))
            else:
                self._evict(key, state)

    def _evict(self, key: TimerKey, state: Any) -> None:
        del self.states[key]
        self.counts.evicted += 1
        if self.persistent:
            self._evicting[key] = state

    def _windows_due(self, now: int) -> None:
        rows = self.windows.due(now)
        self._pending += rows
        stage = self.stage
        if stage is not None:
            stage.accept(rows)
            due = stage.next_due
            if due is not None and due <= now:
                self._pending += stage.advance(now)
        self._schedule_windows()

    def stage_changed(self) -> None:
        """The stage's ``next_due`` changed outside the runtime (``processors.split``)."""
        self._schedule_windows()

    def _schedule_windows(self) -> None:
        dues = [self.windows.next_due()]
        if self.stage is not None:
            dues.append(self.stage.next_due)
        present = [d for d in dues if d is not None]
        self._next_due = min(present) if present else None

    # ---- state bookkeeping -------------------------------------------------------------

    def _put(self, key: TimerKey, state: Any) -> None:
        fam = family(key[0])
        self.states[key] = state
        self._open += int(fam is not SIDE and fam.is_open(state))
        self.timers.schedule(key, self._due_of(fam, state))

    def _changed(self, key: TimerKey, state: Any) -> None:
        self._dirty[key] = state
        self._unsaved[key] = state

    def _due_of(self, fam: Family, state: Any) -> int | None:
        deadline = fam.deadline(state, self.cfg)
        if deadline is not None:
            return deadline
        closed = fam.closed_at(state)
        return None if closed is None else closed + self.cfg.closed_retention_ms

    def _current_due(self, key: TimerKey) -> int | None:
        state = self.states.get(key)
        return None if state is None else self._due_of(family(key[0]), state)

    # ---- output ------------------------------------------------------------------------

    def flush(self, windows: bool = True) -> list[Row]:
        """Rows of every entity changed since the last flush (one per entity, rendered now),
        gap rows, window rows emitted since (and with ``windows`` every changed window, the
        open minute too), alert rows. The caller owns the returned rows."""
        rows: list[Row] = []
        for fam, state in self._retired:
            rows += _rows_of(fam, state)
        self._retired.clear()
        for (name, _), state in self._dirty.items():
            rows += _rows_of(family(name), state)
        self._dirty.clear()
        if windows:
            flushed = self.windows.flush()
            if self.stage is not None:
                self.stage.accept(flushed)
            self._pending += flushed
            self._schedule_windows()
        rows += self._pending
        self._pending = []
        return rows

    def begin_checkpoint(self) -> Checkpoint:
        """Hand over the states changed since the last checkpoint and the partition state.
        If persisting it fails, give it back with ``abort_checkpoint``."""
        checkpoint = Checkpoint(self._unsaved, self._evicting, self.meta())
        self._unsaved, self._evicting = {}, {}
        return checkpoint

    def abort_checkpoint(self, checkpoint: Checkpoint) -> None:
        for key, state in checkpoint.states.items():
            self._unsaved.setdefault(key, state)
        for key, state in checkpoint.evicted.items():
            if key not in self.states:
                self._evicting.setdefault(key, state)

    def meta(self) -> dict[str, Any]:
        """The partition's own state (clock, windows, alert stage) as JSON-able data."""
        return {
            "clock": self.clock,
            "windows": self.windows.to_json(),
            "stage": None if self.stage is None else self.stage.to_json(),
        }

    def load_meta(self, meta: dict[str, Any]) -> None:
        """Continue from ``meta()`` output (restore); call before feeding."""
        self.clock = meta["clock"]
        self.windows.load(meta["windows"])
        if self.stage is not None and meta.get("stage") is not None:
            self.stage.load(meta["stage"])
        self._schedule_windows()

    @property
    def changed(self) -> bool:
        """Something to flush: changed entities, emitted windows or alerts, changed windows."""
        return bool(self._dirty or self._retired or self._pending or self.windows.dirty)

    def open_entities(self) -> int:
        """Open calls, streams, messages and connections (side states are no sessions)."""
        return self._open

    @property
    def late_dropped(self) -> int:
        return self.windows.late_dropped


def _time_of(env: Mapping[str, object]) -> object:
    """``received_at`` unchecked (compiled code would check the declared int on access)."""
    return env["received_at"]


def _scope(state: Any, column: str) -> str:
    fields = getattr(state, "fields", None)
    return "" if fields is None else str(entity_field(state, column, ""))


def _rows_of(fam: Family, state: Any) -> list[Row]:
    rows: list[Row] = []
    version = state.version if fam.render is not None else 0
    if fam.render is not None and version != state.emitted:
        row = fam.render(state)
        row["version"] = version
        state.emitted = version
        rows.append((fam.table or "", row))
    if fam.extra_rows is not None:
        rows += fam.extra_rows(state)
    return rows
