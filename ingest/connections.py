"""Open HTTP connections as a bounded resource: deadlines and shedding, decided purely.

A connection is in one of three phases:

- ``head``: connected, or answered and kept alive, until its next request's headers are
  complete; must finish within ``header_timeout_s`` of entering the phase;
- ``body``: headers complete, body still arriving; within ``body_timeout_s``;
- ``busy``: a complete request is being answered. Never shed, never timed out here.

``opened`` keeps at most ``max_connections - reserve`` connections open once a new one
arrives, closing the oldest ``head``/``body`` connections first (the newcomer is the
youngest, so a WCS connection about to deliver a hook survives a flood of slow ones); the
reserve is room for connections that are busy. Above ``max_connections`` with nothing left
to shed, the newcomer itself is refused. Time is an argument (monotonic seconds); the
uvicorn adapter is ``ingest.uvicorn_compat``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

C = TypeVar("C", bound=Hashable)

REASONS: Final = ("header_timeout", "body_timeout", "shed", "refused")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int = 10_000
    reserve: int = 1_000
    header_timeout_s: float = 10.0
    body_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if not 0 <= self.reserve < self.max_connections:
            raise ValueError("need 0 <= reserve < max_connections")
        if self.header_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ValueError("timeouts must be positive")


class ConnectionTable(Generic[C]):
    """Phases of the open connections. Methods return the connections the caller must close
    (with the reason); those are already forgotten here. Not thread-safe (one event loop)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._head: OrderedDict[C, float] = OrderedDict()  # since when, oldest first
        self._body: OrderedDict[C, float] = OrderedDict()
        self._busy: set[C] = set()
        self.closed_by: dict[str, int] = dict.fromkeys(REASONS, 0)

    def __len__(self) -> int:
        return len(self._head) + len(self._body) + len(self._busy)

    def opened(self, conn: C, now: float) -> list[tuple[C, str]]:
        """A new connection (phase ``head``); the connections to close to make room."""
        self._head[conn] = now
        out: list[tuple[C, str]] = []
        soft = self.limits.max_connections - self.limits.reserve
        while len(self) > soft:
            victim = self._oldest_waiting(besides=conn)
            if victim is None:
                break
            out.append(self._drop(victim, "shed"))
        if len(self) > self.limits.max_connections:
            out.append(self._drop(conn, "refused"))
        return out

    def waiting_headers(self, conn: C, now: float) -> None:
        """Answered and kept alive: waiting for the next request's headers from ``now``."""
        if self._forget(conn):
            self._head[conn] = now

    def reading_body(self, conn: C, now: float) -> None:
        if self._forget(conn):
            self._body[conn] = now

    def busy(self, conn: C) -> None:
        if self._forget(conn):
            self._busy.add(conn)

    def closed(self, conn: C) -> None:
        self._forget(conn)

    def expired(self, now: float) -> list[tuple[C, str]]:
        """Connections past their header or body deadline (forgotten here; close them)."""
        out: list[tuple[C, str]] = []
        for phase, timeout, reason in (
            (self._head, self.limits.header_timeout_s, "header_timeout"),
            (self._body, self.limits.body_timeout_s, "body_timeout"),
        ):
            while phase:
                conn, since = next(iter(phase.items()))
                if now - since < timeout:
                    break
                out.append(self._drop(conn, reason))
        return out

    def _oldest_waiting(self, besides: C) -> C | None:
        candidates = [
            (since, conn)
            for phase in (self._head, self._body)
            for conn, since in _first_two(phase)
            if conn != besides
        ]
        return min(candidates, key=lambda item: item[0])[1] if candidates else None

    def _drop(self, conn: C, reason: str) -> tuple[C, str]:
        self._forget(conn)
        self.closed_by[reason] += 1
        return conn, reason

    def _forget(self, conn: C) -> bool:
        """Remove ``conn`` from its phase; False when it is not (or no longer) tracked."""
        if self._head.pop(conn, None) is not None or self._body.pop(conn, None) is not None:
            return True
        if conn in self._busy:
            self._busy.discard(conn)
            return True
        return False


def _first_two(phase: OrderedDict[C, float]) -> list[tuple[C, float]]:
    """The two oldest entries (the oldest may be the newcomer itself)."""
    out = []
    for item in phase.items():
        out.append(item)
        if len(out) == 2:
            break
    return out
