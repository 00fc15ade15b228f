"""The family registry: how the pipeline drives each family's pure state machine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from events.envelope import Envelope
from events.tables import Row
from processors import calls, connections, messages, side, streams
from processors import core as c
from processors.config import ProcessorConfig


@dataclass(frozen=True, slots=True)
class Family:
    """Adapter over one family module; states are opaque to the pipeline."""

    step: Callable[[Any, Envelope, ProcessorConfig], tuple[Any, list[Row]]]
    deadline: Callable[[Any, ProcessorConfig], int | None]
    expire: Callable[[Any, int, ProcessorConfig], tuple[Any, list[Row]]]
    evict_at: Callable[[Any, ProcessorConfig], int | None]
    is_open: Callable[[Any], bool]
    from_dict: Callable[[dict[str, Any]], Any]

    def due(self, state: Any, cfg: ProcessorConfig) -> int | None:
        """Next event time the pipeline must act: a timeout while open, eviction once closed."""
        deadline = self.deadline(state, cfg)
        return deadline if deadline is not None else self.evict_at(state, cfg)


def _evict_closed(state: Any, cfg: ProcessorConfig) -> int | None:
    return c.evict_at(state.core, cfg.closed_retention_ms)


def _open(state: Any) -> bool:
    return c.is_open(state.core)


def _entity(module: Any, state_cls: Any) -> Family:
    return Family(
        module.step, module.deadline, module.expire, _evict_closed, _open, state_cls.from_dict
    )


def _no_deadline(state: Any, cfg: ProcessorConfig) -> int | None:
    return None


def _no_expire(state: Any, now_ms: int, cfg: ProcessorConfig) -> tuple[Any, list[Row]]:
    return state, []


SIDE: Final = Family(
    side.step, _no_deadline, _no_expire, side.evict_at, lambda _: False, side.SeenState.from_dict
)

FAMILIES: Final[dict[str, Family]] = {
    "call": _entity(calls, calls.CallState),
    "stream": _entity(streams, streams.StreamState),
    "message": _entity(messages, messages.MessageState),
    "connection": _entity(connections, connections.ConnectionState),
}


def family(name: str) -> Family:
    """The entity family, or the status-only one for subscription/data/diagnostic/unknown."""
    return FAMILIES.get(name, SIDE)
