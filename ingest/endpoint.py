"""The HTTP side of ``POST /wcs/{method}``: bounded body reading and the lean ASGI fast path.

``HookEndpoint.serve`` answers hook requests straight from ASGI (no routing,
no Request object, two ``send`` calls) because FastAPI routing costs several
times the work of the hook itself; ``respond`` is also called by the documented
FastAPI route, and ``answer`` by the HTTP protocol for the plain hook requests it
answers itself (ingest/uvicorn_compat.py), so every path runs the same handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter
from typing import Final

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from ingest.hooks import Answer, HookHandler, PendingAnswer
from ingest.metrics import HookMetrics

PREFIX: Final = "/wcs/"
_JSON: Final = (b"content-type", b"application/json")
_EXTRA_HEADERS: Final[dict[int, tuple[tuple[bytes, bytes], ...]]] = {
    401: ((b"www-authenticate", b'Basic realm="wcs-analytics"'),),
    405: ((b"allow", b"POST"),),
    413: ((b"connection", b"close"),),  # do not read the rest of an oversized body
}


async def read_body(
    headers: Sequence[tuple[bytes, bytes]], receive: Receive, limit: int
) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes.

    Checks Content-Length first, then counts streamed bytes; never holds more
    than ``limit`` bytes plus one chunk. Raises ClientDisconnect.
    """
    for name, value in headers:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                return None
            break
    message = await receive()
    if message["type"] != "http.request":
        raise ClientDisconnect
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body if len(body) <= limit else None
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def extra_headers(status: int) -> tuple[tuple[bytes, bytes], ...]:
    """Headers an answer with ``status`` needs besides content-type and content-length."""
    return _EXTRA_HEADERS.get(status, ())


def response_headers(status: int, body: bytes) -> list[tuple[bytes, bytes]]:
    return [_JSON, (b"content-length", b"%d" % len(body)), *extra_headers(status)]


class HookEndpoint:
    """Serves ``/wcs/{method}`` requests (any HTTP method); records latency."""

    __slots__ = ("_handler", "_metrics")

    def __init__(self, handler: HookHandler, metrics: HookMetrics) -> None:
        self._handler = handler
        self._metrics = metrics

    async def respond(
        self,
        method: str,
        http_method: str,
        headers: Sequence[tuple[bytes, bytes]],
        receive: Receive,
    ) -> Answer:
        """Read the body within the limit and let the handler answer."""
        handler = self._handler
        if http_method != "POST":
            return handler.wrong_http_method(method)
        try:
            raw = await read_body(headers, receive, handler.max_body_bytes)
        except ClientDisconnect:
            return handler.disconnected(method)
        if raw is None:
            return handler.too_large(method)
        answer = handler.handle(method, raw, headers)
        return answer if isinstance(answer, tuple) else await answer

    @property
    def max_body_bytes(self) -> int:
        return self._handler.max_body_bytes

    def answer(
        self, method: str, raw: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> Answer | PendingAnswer:
        """A ``POST /wcs/{method}`` whose body the HTTP protocol read within the limit
        (ingest.uvicorn_compat answers plain hook requests from its parser callbacks)."""
        return self._handler.handle(method, raw, headers)

    def observe(self, started: float) -> None:
        self._metrics.observe(perf_counter() - started)

    async def serve(self, method: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ``/wcs/{method}`` ASGI request with two ``send`` calls."""
        started = perf_counter()
        status, body = await self.respond(method, scope["method"], scope["headers"], receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": response_headers(status, body),
            }
        )
        await send({"type": "http.response.body", "body": body})
        self._metrics.observe(perf_counter() - started)


def hook_method(scope: Scope) -> str | None:
    """The ``{method}`` of a ``/wcs/{method}`` HTTP scope (relative to root_path), else None."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path[len(PREFIX) :] if path.startswith(PREFIX) else None
