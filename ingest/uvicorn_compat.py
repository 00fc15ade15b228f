"""uvicorn's httptools protocol, told about request phases (the one place that subclasses it).

uvicorn has no deadline for request headers or bodies and no cap on idle connections, so
``guarded_protocol`` reports each connection's phase to an ``HttpGuard`` from the parser
callbacks: connected or kept alive (``head``), headers complete (``body``), message complete
(``busy``), answered (``head`` again), lost. Tested against the pinned uvicorn
(tests/unit/test_uvicorn_compat.py) because it overrides undocumented callbacks.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class ConnectionWatcher(Protocol):
    """What the protocol reports to (``ingest.http_guard.HttpGuard``; no import cycle)."""

    def opened(self, connection: Any) -> None: ...
    def closed(self, connection: Any) -> None: ...
    def reading_body(self, connection: Any) -> None: ...
    def busy(self, connection: Any) -> None: ...
    def waiting_headers(self, connection: Any) -> None: ...


HOOKED = (
    "connection_made",
    "connection_lost",
    "on_headers_complete",
    "on_message_complete",
    "on_response_complete",
)


def guarded_protocol(guard: ConnectionWatcher) -> type[asyncio.Protocol]:
    """An ``HttpToolsProtocol`` subclass whose connections ``guard`` tracks.

    Pass it as ``uvicorn.Config(http=...)``."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            guard.opened(self)

        def connection_lost(self, exc: Exception | None) -> None:
            guard.closed(self)
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            idle = self._idle()  # before uvicorn replaces the cycle
            super().on_headers_complete()
            if idle:
                guard.reading_body(self)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            guard.busy(self)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self._idle():  # no pipelined request started
                guard.waiting_headers(self)

        def _idle(self) -> bool:
            cycle: Any = self.cycle
            return cycle is None or bool(cycle.response_complete)

        def close_now(self) -> None:
            """Close the connection (the guard decided); uvicorn's connection_lost cleans up."""
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedHttpToolsProtocol
