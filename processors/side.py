"""Families without an entity table (subscription, data, diagnostic, unknown).

They only feed ``status_counts``: a tiny per-key state remembers which statuses were
counted so duplicates and retries don't count again. It closes
``message_idle_timeout_ms`` after its last event (these are short operations) and then
follows the common lifecycle (kept, archived, forgotten after the retention).
"""

from __future__ import annotations

from events.envelope import Envelope
from processors.config import ProcessorConfig
from processors.entity import status_of


class SeenState:
    __slots__ = (
        "changes",
        "emitted",
        "incarnation",
        "key",
        "last_event_at",
        "seen",
        "timed_out_at",
    )

    def __init__(self, key: str, t: int, incarnation: int = 0) -> None:
        self.key = key
        self.incarnation = incarnation
        self.last_event_at = t
        self.seen: tuple[str, ...] = ()  # sorted statuses already counted
        self.timed_out_at: int | None = None
        self.changes = 0
        self.emitted = 0

    @property
    def statuses(self) -> frozenset[str]:
        return frozenset(self.seen)


def apply(state: SeenState, env: Envelope, cfg: ProcessorConfig) -> str | None:
    """Remember the event's status; returns it when it is new for this key. ``changes``
    counts the events that changed the state (the first one, a later ``last_event_at``:
    the deadline moves, or a new status), so the runtime hands it to the next checkpoint."""
    t = env["received_at"]
    changed = t > state.last_event_at or state.changes == 0
    state.last_event_at = max(state.last_event_at, t)
    status = status_of(env["body"])
    if status is None or status in state.seen:
        state.changes += int(changed)
        return None
    state.seen = tuple(sorted((*state.seen, status)))
    state.changes += 1
    return status


def deadline(state: SeenState, cfg: ProcessorConfig) -> int | None:
    if state.timed_out_at is not None:
        return None
    return state.last_event_at + cfg.message_idle_timeout_ms


def expire(state: SeenState, now_ms: int, cfg: ProcessorConfig) -> bool:
    due = deadline(state, cfg)
    if due is None or due > now_ms:
        return False
    state.timed_out_at = due
    return True
