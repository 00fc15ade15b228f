"""The mutable state every session entity shares, and the order-independent fold over it.

``observe`` folds one event into an ``Entity`` in place with min/max/union only (keyed by
``(received_at, envelope id)``), so any arrival order and any number of exact duplicates
give the same state. "Lifecycle" events drive status, info and the first time of each
status; "side" events (transfers, recordings, registrations...) only update times,
fields and the set of statuses counted in ``status_counts``.

States are mutable on purpose: the runtime owns them inside one partition and folds a
batch without copying (docs/processing.md#runtime). ``changes`` counts the folds that
changed anything; with ``last_event_at`` it gives the row ``version`` (see ``version``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, ClassVar, Final

from events.envelope import Envelope
from processors.values import Json, text

Stamp = tuple[int, str, Any]  # (received_at, envelope id, value): ordered by time, then id
CHANGE_BITS: Final = 20  # version = last_event_at << 20 | changes (mod 2**20)
CHANGE_MASK: Final = (1 << CHANGE_BITS) - 1
SCOPE: Final = ("node_id", "app_key", "session_id")  # envelope fields kept like body fields
NO_METHODS: Final[dict[str, int]] = {}  # shared until an entity records a method (never mutated)


FieldSource = tuple[str, str | None, Callable[[Any], Json | None] | None]


@dataclass(frozen=True, slots=True)
class Spec:
    """Per family: body fields kept from the earliest event carrying them (column, body
    name, converter), terminal statuses (they close the entity), side methods.
    ``sources`` adds the envelope's own scope fields (name None: read from the envelope)."""

    fields: tuple[tuple[str, str, Callable[[Any], Json | None]], ...]
    terminal: frozenset[str] = frozenset()
    side_methods: frozenset[str] = frozenset()
    sources: tuple[FieldSource, ...] = ()
    methods: frozenset[str] = frozenset()  # methods whose first time the rows need
    _todo: dict[frozenset[str], tuple[FieldSource, ...]] = dc_field(
        default_factory=dict, compare=False
    )

    def todo(self, fields: Mapping[str, Any]) -> tuple[FieldSource, ...]:
        """The sources of the columns ``fields`` does not hold yet (tuples shared by every
        entity holding the same columns)."""
        held = frozenset(fields)
        found = self._todo.get(held)
        if found is None:
            found = self._todo[held] = tuple(s for s in self.sources if s[0] not in held)
        return found


def spec(
    fields: Mapping[str, tuple[str, Callable[[Any], Json | None]]],
    terminal: frozenset[str] = frozenset(),
    side_methods: frozenset[str] = frozenset(),
    methods: frozenset[str] = frozenset(),
) -> Spec:
    body = tuple((col, name, conv) for col, (name, conv) in fields.items())
    scope: tuple[FieldSource, ...] = tuple((col, None, None) for col in SCOPE)
    return Spec(body, terminal, side_methods, scope + body, methods)


class Entity:
    """One entity's folded observations. Subclasses add family fields (``__slots__``)."""

    __slots__ = (
        "changes",
        "created_at",
        "emitted",
        "fields",
        "firsts",
        "incarnation",
        "key",
        "last_event_at",
        "latest_info",
        "latest_status",
        "latest_terminal",
        "methods",
        "side",
        "timed_out_at",
        "todo",
    )
    DERIVED: ClassVar[tuple[str, ...]] = (
        "todo",
    )  # not stored: rebuilt from ``fields`` on the next fold

    def __init__(self, key: str, t: int, incarnation: int = 0) -> None:
        self.key = key
        self.incarnation = incarnation  # 0, or the time of the event that reused the key
        self.created_at = t
        self.last_event_at = t
        self.firsts: dict[str, Stamp] = {}  # lifecycle status -> earliest (t, id, info)
        self.methods: dict[str, int] = NO_METHODS  # method -> earliest (``Spec.methods`` only)
        self.fields: dict[str, Stamp] = {}  # column -> earliest (t, id, value)
        self.side: tuple[str, ...] = ()  # side statuses, sorted
        self.latest_status: Stamp | None = None
        self.latest_terminal: Stamp | None = None
        self.latest_info: Stamp | None = None
        self.timed_out_at: int | None = None  # the deadline that closed it, None if never
        self.changes = 0  # folds (and timeouts) that changed the state
        self.emitted = 0  # version of the last row emitted, 0 before the first
        self.todo: tuple[FieldSource, ...] | None = None  # sources of columns not held yet

    @property
    def version(self) -> int:
        """Row version: monotonic per key whatever the batching, eviction or restart, because
        it grows with both the entity's latest event time and its change count."""
        return (self.last_event_at << CHANGE_BITS) | (self.changes & CHANGE_MASK)

    @property
    def statuses(self) -> frozenset[str]:
        """Statuses the entity has reached (feeds status_counts)."""
        return frozenset(self.firsts) | frozenset(self.side)

    def reached(self, status: str) -> bool:
        return status in self.firsts or status in self.side


def status_of(body: Mapping[str, Any]) -> str | None:
    status = body.get("status")
    return status if isinstance(status, str) and status else None


def precedes(t: int, eid: str, stamp: Stamp | None) -> bool:
    """True when the event (t, eid) is earlier than ``stamp`` (or there is no stamp yet)."""
    return stamp is None or t < stamp[0] or (t == stamp[0] and eid < stamp[1])


def follows(t: int, eid: str, stamp: Stamp | None) -> bool:
    """True when the event (t, eid) is later than ``stamp`` (or there is no stamp yet)."""
    return stamp is None or t > stamp[0] or (t == stamp[0] and eid > stamp[1])


def observe(e: Entity, env: Envelope, spec: Spec) -> tuple[bool, str | None]:
    """Fold one event into ``e``; returns (changed, the status it reached first, if any)."""
    t, eid, body, method = env["received_at"], env["id"], env["body"], env["method"]
    fields = e.fields
    if t > e.last_event_at or not e.changes:
        # later than every earlier event, or the first one (the common cases): it cannot
        # replace a field already held, so only the columns not held yet are looked at
        e.last_event_at, changed = t, True
        todo = e.todo if e.todo is not None else spec.todo(fields)
        got = False
        for col, name, conv in todo:
            raw = env[col] if name is None else body.get(name)  # type: ignore[literal-required]
            if raw is None:
                continue
            value = raw if conv is None else conv(raw)
            if value is not None:
                fields[col], got = (t, eid, value), True
        e.todo = spec.todo(fields) if got else todo
    else:
        changed = _earlier_fields(e, t, eid, env, spec)
        if t < e.created_at:
            e.created_at, changed = t, True
    if method in spec.methods:
        held = e.methods.get(method)
        if held is None or t < held:
            if e.methods is NO_METHODS:
                e.methods = {}
            e.methods[method], changed = t, True
    status = status_of(body)
    new = None if status is None or e.reached(status) else status
    if method in spec.side_methods:
        return _side(e, status) or changed, new
    return _lifecycle(e, t, eid, status, body, spec) or changed, new


def _earlier_fields(e: Entity, t: int, eid: str, env: Envelope, spec: Spec) -> bool:
    """Fields an out-of-order event carries earlier than the held ones."""
    changed, fields, body = False, e.fields, env["body"]
    for col, name, conv in spec.sources:
        raw = env[col] if name is None else body.get(name)  # type: ignore[literal-required]
        if raw is None or not precedes(t, eid, fields.get(col)):
            continue
        value = raw if conv is None else conv(raw)
        if value is not None:
            fields[col], changed = (t, eid, value), True
    if changed:
        e.todo = spec.todo(fields)
    return changed


def _side(e: Entity, status: str | None) -> bool:
    if status is None or status in e.side:
        return False
    e.side = tuple(sorted((*e.side, status)))
    return True


def _lifecycle(
    e: Entity, t: int, eid: str, status: str | None, body: Mapping[str, Any], spec: Spec
) -> bool:
    changed = False
    info = body.get("info")
    if info.__class__ is str:
        info_text = info
    else:
        converted = text(info)
        info_text = converted if isinstance(converted, str) else ""
    if info_text and follows(t, eid, e.latest_info):
        e.latest_info, changed = (t, eid, info_text), True
    if status is None:
        return changed
    if precedes(t, eid, e.firsts.get(status)):
        e.firsts[status], changed = (t, eid, info_text), True
    if follows(t, eid, e.latest_status):
        e.latest_status, changed = (t, eid, status), True
    if status in spec.terminal and follows(t, eid, e.latest_terminal):
        e.latest_terminal, changed = (t, eid, status), True
    return changed


# ---- reading a state (render helpers) ----------------------------------------------------


def first(e: Entity, *statuses: str) -> Stamp | None:
    """Earliest (t, id, info) among the given lifecycle statuses."""
    found = [e.firsts[s] for s in statuses if s in e.firsts]
    return min(found) if found else None


def status_named(e: Entity, stamp: Stamp | None) -> str:
    """The status whose first occurrence is ``stamp`` ('' for None)."""
    return next((s for s, f in sorted(e.firsts.items()) if f == stamp), "")


def at(stamp: Stamp | None) -> int | None:
    return None if stamp is None else stamp[0]


def field(e: Entity, column: str, default: Json) -> Any:
    stamp = e.fields.get(column)
    return default if stamp is None else stamp[2]


def values(e: Entity) -> dict[str, Any]:
    """Every held field's value by column (renders read several: one dict, C-level gets)."""
    return {column: stamp[2] for column, stamp in e.fields.items()}


def current_status(e: Entity) -> str:
    """Latest lifecycle status; once a terminal one is seen only terminal ones count, so a
    retried non-terminal event arriving after the end cannot resurrect the entity."""
    stamp = e.latest_terminal or e.latest_status
    return "" if stamp is None else stamp[2]


def info_for(e: Entity, terminal: Stamp | None) -> str:
    """The terminal event's info when it has one, else the latest non-empty info."""
    if terminal is not None and terminal[2]:
        return str(terminal[2])
    return "" if e.latest_info is None else str(e.latest_info[2])


def is_open(e: Entity) -> bool:
    return e.latest_terminal is None and e.timed_out_at is None


def closed_at(e: Entity) -> int | None:
    """When it closed: its last event or its timeout deadline, whichever is later."""
    if is_open(e):
        return None
    return max(e.last_event_at, e.timed_out_at or 0)


def time_out(e: Entity, deadline: int | None, now_ms: int, changes_row: bool = True) -> bool:
    """Close ``e`` by its deadline when due at ``now_ms``; True when it closed."""
    if deadline is None or deadline > now_ms:
        return False
    e.timed_out_at = deadline
    e.changes += int(changes_row)
    return True
