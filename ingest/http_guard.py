"""The HTTP server's connection guard: deadlines, the connection cap, shedding counted and logged.

Wraps ``ingest.connections.ConnectionTable`` for one event loop: a sweep every
``SWEEP_S`` closes connections past their header/body deadline; a new connection beyond
``max_connections - reserve`` sheds the oldest idle or slow ones. What was closed is
counted by reason on /metrics (``wcs_http_connections_closed_total``) and logged at most
once per ``LOG_EVERY_S`` as one line. ``raise_fd_limit`` lifts the soft open-files limit to
the hard one at start, and the cap is kept below it.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from ingest.connections import REASONS, ConnectionLimits, ConnectionTable

if TYPE_CHECKING:  # uvicorn is imported when a protocol is asked for
    from ingest.uvicorn_compat import HookAnswers

log = logging.getLogger(__name__)

SWEEP_S: Final = 0.5
LOG_EVERY_S: Final = 10.0
FD_RESERVE: Final = 1024  # files, chDB parts, Kafka sockets: never taken by connections


class Closable(Protocol):
    def close_now(self) -> None: ...


def raise_fd_limit() -> int:
    """Set the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, target, exc)
    return soft


def fit_limits(limits: ConnectionLimits, fd_limit: int) -> ConnectionLimits:
    """``limits`` with the cap below ``fd_limit - FD_RESERVE`` (the reserve scaled along)."""
    room = max(64, fd_limit - FD_RESERVE)
    if limits.max_connections <= room:
        return limits
    reserve = min(limits.reserve, room // 10)
    log.warning(
        "open-files limit %d: connection cap lowered from %d to %d (reserve %d)",
        fd_limit,
        limits.max_connections,
        room,
        reserve,
    )
    return ConnectionLimits(room, reserve, limits.header_timeout_s, limits.body_timeout_s)


class HttpGuard:
    """One per server; call from the event loop only."""

    def __init__(self, limits: ConnectionLimits, clock: Callable[[], float] = time.monotonic):
        self.table: ConnectionTable[Any] = ConnectionTable(limits)
        self.clock = clock
        self._sweeper: asyncio.TimerHandle | None = None
        self._logged = dict(self.table.closed_by)
        self._logged_at = float("-inf")

    @classmethod
    def start(cls, limits: ConnectionLimits) -> HttpGuard:
        """Raise the fd limit, fit the cap below it, log the limits in force."""
        fds = raise_fd_limit()
        guard = cls(fit_limits(limits, fds))
        fitted = guard.table.limits
        log.info(
            "connections: at most %d (%d kept for requests in progress), headers within %.0fs, "
            "body within %.0fs; open-files limit %d",
            fitted.max_connections,
            fitted.reserve,
            fitted.header_timeout_s,
            fitted.body_timeout_s,
            fds,
        )
        return guard

    def protocol_class(self, hooks: HookAnswers | None = None) -> type[asyncio.Protocol]:
        """uvicorn's protocol reporting to this guard; with ``hooks`` (the hook endpoint) it
        answers plain hook requests itself (ingest/uvicorn_compat.py)."""
        from ingest.uvicorn_compat import guarded_protocol

        return guarded_protocol(self, hooks)

    # -- called by the protocol --------------------------------------------------------------
    def opened(self, conn: Closable) -> None:
        self._close(self.table.opened(conn, self.clock()))
        if self._sweeper is None:
            self._schedule()

    def waiting_headers(self, conn: Closable) -> None:
        self.table.waiting_headers(conn, self.clock())

    def reading_body(self, conn: Closable) -> None:
        self.table.reading_body(conn, self.clock())

    def busy(self, conn: Closable) -> None:
        self.table.busy(conn)

    def closed(self, conn: Closable) -> None:
        self.table.closed(conn)

    # -- sweeping, logging, metrics ----------------------------------------------------------
    def _schedule(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)

    def _sweep(self) -> None:
        now = self.clock()
        self._close(self.table.expired(now))
        if now - self._logged_at >= LOG_EVERY_S and self.table.closed_by != self._logged:
            self._report(now)
        self._schedule()

    def _close(self, victims: list[tuple[Any, str]]) -> None:
        for conn, _reason in victims:
            conn.close_now()

    def _report(self, now: float) -> None:
        counts = self.table.closed_by
        delta = {r: counts[r] - self._logged[r] for r in REASONS if counts[r] != self._logged[r]}
        since = (
            "since start"
            if self._logged_at == float("-inf")
            else f"in the last {now - self._logged_at:.0f}s"
        )
        limits = self.table.limits
        log.warning(
            "closed %d HTTP connections (%s) %s; %d open of at most %d",
            sum(delta.values()),
            ", ".join(f"{reason} {count}" for reason, count in delta.items()),
            since,
            len(self.table),
            limits.max_connections,
        )
        self._logged, self._logged_at = dict(counts), now

    def metrics(self) -> str:
        limits = self.table.limits
        lines = [
            "# HELP wcs_http_connections_open Open HTTP connections.",
            "# TYPE wcs_http_connections_open gauge",
            f"wcs_http_connections_open {len(self.table)}",
            "# HELP wcs_http_connections_max The connection cap in force (--max-connections).",
            "# TYPE wcs_http_connections_max gauge",
            f"wcs_http_connections_max {limits.max_connections}",
            "# HELP wcs_http_connections_closed_total Connections the server closed: header or "
            "body deadline passed, shed (oldest idle/slow above the cap minus the reserve), "
            "refused (cap reached, all busy).",
            "# TYPE wcs_http_connections_closed_total counter",
        ]
        lines += [
            f'wcs_http_connections_closed_total{{reason="{r}"}} {self.table.closed_by[r]}'
            for r in REASONS
        ]
        return "\n".join(lines) + "\n"
