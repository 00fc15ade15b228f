"""uvicorn's httptools protocol, told about request phases and answering hooks itself (the one
place that subclasses it).

* **Phases.** uvicorn has no deadline for request headers or bodies and no cap on idle
  connections, so ``guarded_protocol`` reports each connection's phase to an ``HttpGuard``
  from the parser callbacks: connected or kept alive (``head``), headers complete (``body``),
  message complete (``busy``), answered (``head`` again), lost.
* **Hooks answered from the parser callbacks.** Given the hook endpoint, a plain hook request
  (``POST /wcs/{method}``, HTTP/1.1 kept alive, a Content-Length within the body limit, no
  ``Expect``, nothing before it still being answered on the connection) never becomes an
  ASGI request: its body is collected by ``on_body`` and ``on_message_complete`` answers it
  with the endpoint's code (``HookEndpoint.answer``, the same handler as the ASGI path and the
  documented route), one write with uvicorn's own status line and default headers. That is
  no per-request task, scope or ASGI messages: about 1.3x the hooks per second of the ASGI
  fast path (bench/README.md). Every other request (any other path or method, chunked or
  oversized bodies, ``Expect: 100-continue``, HTTP/1.0, ``Connection: close``, a request
  pipelined behind one in progress) goes through uvicorn and the app as before. An answer
  that must wait (the bus's hand-off when it spills to disk) is written by a task; requests
  behind it queue in uvicorn's pipeline as behind any request in progress. When the server
  stops, a hook whose body is still arriving is answered (``connection: close``) before the
  connection closes, as uvicorn lets a request in progress finish.

Tested against the pinned uvicorn (tests/unit/test_uvicorn_compat.py) because it overrides
undocumented callbacks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from time import perf_counter
from typing import Any, Final, Protocol

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ingest.endpoint import PREFIX, response_headers
from ingest.hooks import Answer

log = logging.getLogger(__name__)

_PREFIX: Final = PREFIX.encode("ascii")
_INTERNAL_ERROR: Final[Answer] = (500, b'{"error":"internal error"}')


class ConnectionWatcher(Protocol):
    """What the protocol reports to (``ingest.http_guard.HttpGuard``; no import cycle)."""

    def opened(self, connection: Any) -> None: ...
    def closed(self, connection: Any) -> None: ...
    def reading_body(self, connection: Any) -> None: ...
    def busy(self, connection: Any) -> None: ...
    def waiting_headers(self, connection: Any) -> None: ...


class HookAnswers(Protocol):
    """What answers hooks from the protocol (``ingest.endpoint.HookEndpoint``)."""

    @property
    def max_body_bytes(self) -> int: ...
    def answer(
        self, method: str, raw: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> Answer | Awaitable[Answer]: ...
    def observe(self, started: float) -> None: ...


HOOKED = (
    "shutdown",
    "connection_made",
    "connection_lost",
    "on_headers_complete",
    "on_body",
    "on_message_complete",
    "on_response_complete",
)


class _Waiting:
    """Stands in for uvicorn's cycle while an answer is awaited: uvicorn queues requests
    pipelined behind it, marks it disconnected and asks it not to keep the connection alive
    (shutdown), as it does its own cycles."""

    __slots__ = ("disconnected", "keep_alive", "message_event", "response_complete")

    def __init__(self) -> None:
        self.response_complete = False
        self.disconnected = False
        self.keep_alive = True
        self.message_event = asyncio.Event()


def guarded_protocol(
    guard: ConnectionWatcher, hooks: HookAnswers | None = None
) -> type[asyncio.Protocol]:
    """An ``HttpToolsProtocol`` subclass whose connections ``guard`` tracks and which answers
    plain hook requests with ``hooks`` (None: every request goes to the app).

    Pass it as ``uvicorn.Config(http=...)``."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _hook: str | None = None  # the {method} of the hook request being read here
        _body: list[bytes]
        _started = 0.0  # when its headers were complete (as the ASGI path's latency)
        _last = False  # the server is stopping: close once the hook being read is answered

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            guard.opened(self)

        def connection_lost(self, exc: Exception | None) -> None:
            guard.closed(self)
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            # a hook answered earlier in the same read armed the keep-alive timeout
            self._unset_keepalive_if_required()
            idle = self._idle()  # before uvicorn replaces the cycle
            if idle and hooks is not None and self._plain_hook(hooks):
                guard.reading_body(self)
                return
            super().on_headers_complete()
            if idle:
                guard.reading_body(self)

        def _plain_hook(self, hooks: HookAnswers) -> bool:
            """Whether this request is answered here; if so, its body is collected."""
            url = self.url
            if not url.startswith(_PREFIX) or self.root_path or self.expect_100_continue:
                return False
            parser = self.parser
            if (
                parser.get_method() != b"POST"
                or parser.get_http_version() != "1.1"
                or not parser.should_keep_alive()
                or parser.should_upgrade()
                or self.limit_concurrency is not None  # uvicorn's 503 beyond it
            ):
                return False
            length = None
            for name, value in self.headers:
                if name == b"content-length":
                    length = value
                elif name == b"transfer-encoding":
                    return False
            if length is None or not length.isdigit() or int(length) > hooks.max_body_bytes:
                return False  # uvicorn and the app answer (413 for an oversized body)
            method = url[len(_PREFIX) :]
            if not method.isascii() or b"?" in method or b"%" in method or b"#" in method:
                return False
            self._hook = method.decode("ascii")
            self._body = []
            self._started = perf_counter()
            return True

        def on_body(self, body: bytes) -> None:
            if self._hook is not None:
                self._body.append(body)
                return
            super().on_body(body)

        def on_message_complete(self) -> None:
            method = self._hook
            if method is None:
                super().on_message_complete()
                guard.busy(self)
                return
            assert hooks is not None  # _hook is only set when there are hooks
            self._hook = None
            guard.busy(self)
            started = self._started
            raw = b"".join(self._body)
            self._body = []
            try:
                answer = hooks.answer(method, raw, self.headers)
            except Exception:  # the handler does not raise; if it did, uvicorn would answer 500
                log.exception("answering the hook %s failed", method)
                answer = _INTERNAL_ERROR
            if isinstance(answer, tuple):
                self._write(answer, keep_alive=not self._last)
                hooks.observe(started)
                if self._last:
                    self.transport.close()
                self.on_response_complete()
            else:
                self._answer_later(hooks, answer, started)

        def _answer_later(
            self, hooks: HookAnswers, pending: Awaitable[Answer], started: float
        ) -> None:
            waiting = _Waiting()
            waiting.keep_alive = not self._last
            self.cycle = waiting  # type: ignore[assignment]

            async def write_when_ready() -> None:
                try:
                    answer = await pending
                except Exception:
                    log.exception("answering a hook failed")
                    answer = _INTERNAL_ERROR
                waiting.response_complete = True
                if waiting.disconnected:
                    return
                self._write(answer, waiting.keep_alive)
                hooks.observe(started)
                if not waiting.keep_alive:
                    self.transport.close()
                self.on_response_complete()

            task = self.loop.create_task(write_when_ready())
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)

        def _write(self, answer: Answer, keep_alive: bool) -> None:
            if self.transport.is_closing():
                return
            status, body = answer
            content = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                content += [name, b": ", value, b"\r\n"]
            for name, value in response_headers(status, body):
                content += [name, b": ", value, b"\r\n"]
            if not keep_alive:
                content.append(b"connection: close\r\n")
            content += [b"\r\n", body]
            self.transport.write(b"".join(content))

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self._idle():  # no pipelined request started
                guard.waiting_headers(self)

        def shutdown(self) -> None:
            """The server is stopping: a hook whose body is being read is answered first (as
            uvicorn lets a request in progress finish), then the connection closes."""
            if self._hook is not None:
                self._last = True
                return
            super().shutdown()

        def _idle(self) -> bool:
            cycle: Any = self.cycle
            return cycle is None or bool(cycle.response_complete)

        def close_now(self) -> None:
            """Close the connection (the guard decided); uvicorn's connection_lost cleans up."""
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedHttpToolsProtocol
