"""Order-independent observations every entity state machine shares.

``Core`` folds events with min/max/union only (keyed by ``(received_at,
envelope id)``), so any arrival order and any number of exact duplicates give the
same ``Core``. "Lifecycle" events drive status, info and the first-time of each
status; "side" events (transfers, recordings, registrations...) only update
times, fields and the set of statuses counted in ``status_counts``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from events.envelope import Envelope
from events.tables import Row
from processors.values import Json, text, tuplify

Stamp = tuple[int, str, str]  # (received_at, envelope id, value): ordered by time, then id
FieldStamp = tuple[int, str, Json]


@dataclass(frozen=True, slots=True)
class Spec:
    """Per family: body fields kept from the earliest event carrying them, terminal
    statuses (they close the entity and stay the displayed status), side methods."""

    fields: Mapping[str, tuple[str, Callable[[Any], Json | None]]]
    terminal: frozenset[str] = frozenset()
    side_methods: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Core:
    key: str
    created_at: int
    last_event_at: int
    firsts: dict[str, Stamp]  # lifecycle status -> earliest (t, id, info)
    methods: dict[str, int]  # method -> earliest received_at
    fields: dict[str, FieldStamp]  # column -> earliest (t, id, value)
    side_statuses: tuple[str, ...] = ()  # sorted
    latest_status: Stamp | None = None
    latest_terminal: Stamp | None = None
    latest_info: Stamp | None = None
    timed_out_at: int | None = None  # the deadline that closed it, None if never
    version: int = 0  # rows emitted so far


def status_of(body: Mapping[str, Any]) -> str | None:
    status = body.get("status")
    return status if isinstance(status, str) and status else None


def earlier(a: Any, b: Any) -> Any:
    """The earlier of two stamps; ``a`` may be None (nothing yet)."""
    return b if a is None or b < a else a


def later(a: Any, b: Any) -> Any:
    """The later of two stamps; ``a`` may be None (nothing yet)."""
    return b if a is None or b > a else a


def is_lifecycle(env: Envelope, spec: Spec) -> bool:
    return env["method"] not in spec.side_methods


def observe(core: Core | None, env: Envelope, spec: Spec) -> Core:
    """Fold one event into ``core`` (None: first event of the entity)."""
    t, eid, body, method = env["received_at"], env["id"], env["body"], env["method"]
    if core is None:
        core = Core(env["key"], t, t, {}, {}, {})
    fields = dict(core.fields)
    scope = {"node_id": env["node_id"], "app_key": env["app_key"], "session_id": env["session_id"]}
    carried = {col: conv(body.get(name)) for col, (name, conv) in spec.fields.items()}
    for col, value in (scope | carried).items():
        if value is not None:
            fields[col] = earlier(fields.get(col), (t, eid, value))
    firsts, side, latest_status, latest_terminal, latest_info = (
        core.firsts,
        core.side_statuses,
        core.latest_status,
        core.latest_terminal,
        core.latest_info,
    )
    status = status_of(body)
    if not is_lifecycle(env, spec):
        if status is not None and status not in side:
            side = tuple(sorted((*side, status)))
    else:
        info = text(body.get("info"))
        info_text = info if isinstance(info, str) else ""
        if info_text:
            latest_info = later(latest_info, (t, eid, info_text))
        if status is not None:
            firsts = firsts | {status: earlier(firsts.get(status), (t, eid, info_text))}
            latest_status = later(latest_status, (t, eid, status))
            if status in spec.terminal:
                latest_terminal = later(latest_terminal, (t, eid, status))
    return Core(
        core.key,
        min(core.created_at, t),
        max(core.last_event_at, t),
        firsts,
        core.methods | {method: min(t, core.methods.get(method, t))},
        fields,
        side,
        latest_status,
        latest_terminal,
        latest_info,
        core.timed_out_at,
        core.version,
    )


def first(core: Core, *statuses: str) -> Stamp | None:
    """Earliest (t, id, info) among the given lifecycle statuses."""
    found = [core.firsts[s] for s in statuses if s in core.firsts]
    return min(found) if found else None


def status_named(core: Core, stamp: Stamp | None) -> str:
    """The status whose first occurrence is ``stamp`` ('' for None)."""
    return next((s for s, first in sorted(core.firsts.items()) if first == stamp), "")


def at(stamp: tuple[int, str, Any] | None) -> int | None:
    return None if stamp is None else stamp[0]


def field(core: Core, column: str, default: Json) -> Any:
    stamp = core.fields.get(column)
    return default if stamp is None else stamp[2]


def current_status(core: Core) -> str:
    """Latest lifecycle status; once a terminal one is seen only terminal ones count, so a
    retried non-terminal event arriving after the end cannot resurrect the entity."""
    stamp = core.latest_terminal or core.latest_status
    return "" if stamp is None else stamp[2]


def info_for(core: Core, terminal: Stamp | None) -> str:
    """The terminal event's info when it has one, else the latest non-empty info."""
    if terminal is not None and terminal[2]:
        return terminal[2]
    return "" if core.latest_info is None else core.latest_info[2]


def statuses(core: Core) -> frozenset[str]:
    return frozenset(core.firsts) | frozenset(core.side_statuses)


def is_open(core: Core) -> bool:
    return core.latest_terminal is None and core.timed_out_at is None


def evict_at(core: Core, retention_ms: int) -> int | None:
    """When a closed entity's state may go: ``closed_retention`` after it closed, where
    "closed" is its last event or its timeout deadline, whichever is later."""
    if is_open(core):
        return None
    return max(core.last_event_at, core.timed_out_at or 0) + retention_ms


def timed_out(core: Core, deadline: int | None, now_ms: int) -> Core | None:
    """``core`` closed by its deadline, or None when nothing is due at ``now_ms``."""
    if deadline is None or deadline > now_ms:
        return None
    return replace(core, timed_out_at=deadline)


def publish(
    table: str, old_row: dict[str, Any] | None, row: dict[str, Any], core: Core
) -> tuple[Core, list[Row]]:
    """Emit ``row`` with the next version only when it differs from ``old_row``."""
    if row == old_row:
        return core, []
    core = replace(core, version=core.version + 1)
    return core, [(table, {**row, "version": core.version})]


def core_from_dict(data: dict[str, Any]) -> Core:
    return Core(**tuplify(data))


class CoreState:
    """Mixin for entity states built around a ``core: Core`` field (dataclasses only)."""

    __slots__ = ()
    core: Core

    @property
    def statuses(self) -> frozenset[str]:
        """Statuses the entity has reached (feeds status_counts)."""
        return statuses(self.core)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for snapshots and Faust tables; ``from_dict`` reverses it."""
        result: dict[str, Any] = asdict(self)  # type: ignore[call-overload]
        return result
