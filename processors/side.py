"""Families without an entity table (subscription, data, diagnostic, unknown).

They only feed ``status_counts``: a tiny per-key state remembers which statuses
were counted so duplicates and retries don't count again. It is evicted
``message_idle_timeout_ms`` after its last event (these are short operations;
a retry arriving later than that would be counted again).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from events.envelope import Envelope
from events.tables import Row
from processors.config import ProcessorConfig
from processors.core import status_of


@dataclass(frozen=True, slots=True)
class SeenState:
    last_event_at: int
    seen: tuple[str, ...] = ()  # sorted statuses already counted

    @property
    def statuses(self) -> frozenset[str]:
        return frozenset(self.seen)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeenState:
        return cls(data["last_event_at"], tuple(data["seen"]))


def step(
    state: SeenState | None, env: Envelope, cfg: ProcessorConfig
) -> tuple[SeenState, list[Row]]:
    """Remember the event's status; never emits rows."""
    t = env["received_at"]
    last = t if state is None else max(state.last_event_at, t)
    seen = () if state is None else state.seen
    status = status_of(env["body"])
    if status is not None and status not in seen:
        seen = tuple(sorted((*seen, status)))
    return SeenState(last, seen), []


def evict_at(state: SeenState, cfg: ProcessorConfig) -> int:
    return state.last_event_at + cfg.message_idle_timeout_ms
