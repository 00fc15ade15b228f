"""Plain hook requests answered by the HTTP protocol itself (ingest/uvicorn_compat.py), on a
real uvicorn (uvloop, httptools) behind the guard, as ``run`` and ``ingest`` serve: the same
answers as the ASGI path, in request order on a connection whatever path each request takes,
bodies arriving in pieces, answers that wait for the bus, and the keep-alive timeout."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import uvicorn

from events.envelope import Envelope
from ingest.app import IngestApp, create_app
from ingest.config import IngestConfig
from ingest.connections import ConnectionLimits
from ingest.http_guard import HttpGuard
from tests.integration.uvicorn_server import free_port, running

pytestmark = pytest.mark.integration

CONNECT = orjson.dumps({"nodeId": "n1", "sessionId": "s1", "appKey": "a", "sipPassword": "pw"})


class Bus:
    """Keeps what is published; ``delays[i]`` (s) makes the i-th publish an awaitable."""

    def __init__(self, delays: dict[int, float] | None = None) -> None:
        self.envelopes: list[Envelope] = []
        self.delays = delays or {}

    def publish(self, envelope: Envelope) -> Awaitable[None] | None:
        self.envelopes.append(envelope)
        delay = self.delays.get(len(self.envelopes) - 1)
        return None if delay is None else asyncio.sleep(delay)

    def depth(self) -> int:
        return 0


@asynccontextmanager
async def serving(
    bus: Bus,
    keep_alive_s: int = 5,
    extra: Callable[[IngestApp], None] | None = None,
    config: IngestConfig | None = None,
) -> AsyncIterator[int]:
    app = create_app(config or IngestConfig(max_body_bytes=4096), bus)  # type: ignore[arg-type]
    if extra is not None:
        extra(app)
    guard = HttpGuard(ConnectionLimits(header_timeout_s=30, body_timeout_s=30))

    def config(port: int) -> uvicorn.Config:
        return uvicorn.Config(
            app, port=port, http=guard.protocol_class(app.hooks), log_level="warning",
            lifespan="off", access_log=False, timeout_keep_alive=keep_alive_s,
        )  # fmt: skip

    async with running(config) as port:
        yield port


def hook(method: str, body: bytes, chunked: bool = False, extra: bytes = b"") -> bytes:
    """A raw HTTP/1.1 hook request; ``chunked`` sends the body chunked (the ASGI path)."""
    head = b"POST /wcs/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % (
        method.encode()
    )
    if chunked:
        return (
            head
            + extra
            + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
            % (
                len(body),
                body,
            )
        )
    return head + extra + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


async def answers(
    reader: asyncio.StreamReader, count: int
) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """``count`` HTTP answers: (status line, headers, body)."""
    out = []
    for _ in range(count):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status, *lines = head.rstrip(b"\r\n").split(b"\r\n")
        pairs = (line.split(b": ", 1) for line in lines)
        headers = {name.lower(): value for name, value in pairs}
        body = await reader.readexactly(int(headers[b"content-length"]))
        out.append((status, headers, body))
    return out


Answered = tuple[bytes, dict[bytes, bytes], bytes]


def both_paths(
    cases: list[tuple[str, bytes, bytes]], config: IngestConfig | None = None
) -> tuple[list[Answered], Bus]:
    """Each (method, body, extra header lines) sent as a plain hook (answered by the
    protocol) and chunked (answered by the app) on one connection; asserts that both answers
    are the same but for the date; returns the protocol's answers and the bus."""

    async def probe() -> tuple[list[Answered], list[Answered], Bus]:
        bus = Bus()
        async with serving(bus, config=config) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            fast: list[Answered] = []
            asgi: list[Answered] = []
            for method, body, extra in cases:
                writer.write(hook(method, body, extra=extra))
                fast += await answers(reader, 1)
                writer.write(hook(method, body, chunked=True, extra=extra))
                asgi += await answers(reader, 1)
            writer.close()
        return fast, asgi, bus

    fast, asgi, bus = asyncio.run(probe())
    for one, other in zip(fast, asgi, strict=True):
        assert one[0] == other[0] and one[2] == other[2]
        assert {k: v for k, v in one[1].items() if k != b"date"} == {
            k: v for k, v in other[1].items() if k != b"date"
        }
    return fast, bus


def test_the_protocol_answers_as_the_asgi_path_does() -> None:
    """Echo (with the secret still in the answer, not in the envelope), unknown names,
    bodies that are not JSON objects: byte for byte what the app answers."""
    cases = [("connect", CONNECT), ("bad.name", b"{}"), ("connect", b"[1]"), ("call", b"{x")]
    fast, bus = both_paths([(method, body, b"") for method, body in cases])
    assert [status for status, _, _ in fast] == [
        b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 400 Bad Request",
        b"HTTP/1.1 400 Bad Request",
    ]  # fmt: skip
    assert fast[0][2] == CONNECT
    assert len(bus.envelopes) == 2 and all("sipPassword" not in e["body"] for e in bus.envelopes)


def test_authentication_answers_as_the_asgi_path_does() -> None:
    """HMAC signature and HTTP Basic required: no credentials (401 with its challenge),
    wrong ones (403), right ones (200) answered alike by both paths."""
    secret = "hook-secret"
    signature = hmac.new(secret.encode(), CONNECT, hashlib.md5).hexdigest().encode()
    basic = b"Basic " + base64.b64encode(b"wcs:pw")
    headers = [
        b"",
        b"Authorization: Basic " + base64.b64encode(b"wcs:wrong") + b"\r\n",
        b"Authorization: WCS " + signature + b"\r\nAuthorization: " + basic + b"\r\n",
    ]
    config = IngestConfig(hmac_secret=secret, basic_auth=("wcs", "pw"))
    fast, bus = both_paths([("connect", CONNECT, extra) for extra in headers], config)
    assert [status for status, _, _ in fast] == [
        b"HTTP/1.1 401 Unauthorized", b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 200 OK"
    ]  # fmt: skip
    assert fast[0][1][b"www-authenticate"] == b'Basic realm="wcs-analytics"'
    assert len(bus.envelopes) == 2  # the signed, authorised hook by each path


def test_pipelined_requests_are_answered_in_order_whatever_their_path() -> None:
    """One write with hooks answered by the protocol, a chunked hook and a GET that go
    through the app, a body over the limit last (413, then the connection closes)."""
    bodies = [orjson.dumps({"nodeId": "n1", "sessionId": f"s{i}"}) for i in range(5)]
    burst = (
        hook("connect", bodies[0])
        + hook("connect", bodies[1], chunked=True)
        + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        + hook("connect", bodies[2])
        + hook("connect", bodies[3])
        + hook("connect", b"x" * 5000)
    )

    async def probe() -> tuple[list[Any], bytes, Bus]:
        bus = Bus()
        async with serving(bus) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(burst)
            got = await answers(reader, 6)
            rest = await asyncio.wait_for(reader.read(), 10)  # closed after the 413
            writer.close()
        return got, rest, bus

    got, rest, bus = asyncio.run(probe())
    assert [body for _, _, body in got[:2]] == bodies[:2]
    assert b'"status":"ok"' in got[2][2]
    assert [body for _, _, body in got[3:5]] == bodies[2:4]
    assert got[5][0] == b"HTTP/1.1 413 Request Entity Too Large" and rest == b""
    assert [e["session_id"] for e in bus.envelopes] == ["s0", "s1", "s2", "s3"]


def test_a_body_arriving_in_pieces_is_answered_once_complete() -> None:
    async def probe() -> list[Any]:
        bus = Bus()
        async with serving(bus) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = hook("connect", CONNECT)  # headers cut, then the body's last bytes
            for piece in (request[:20], request[20:-10]):
                writer.write(piece)
                await asyncio.sleep(0.05)
                assert not reader.at_eof() and len(bus.envelopes) == 0
            writer.write(request[-10:])
            got = await answers(reader, 1)
            writer.close()
        return got

    [(status, _, body)] = asyncio.run(probe())
    assert status == b"HTTP/1.1 200 OK" and body == CONNECT


def test_an_answer_that_waits_for_the_bus_keeps_the_order() -> None:
    """The first hook's hand-off takes 0.3 s (a Kafka ack, a disk spool): the hooks
    pipelined behind it are answered after it, not before."""
    bodies = [orjson.dumps({"nodeId": "n1", "sessionId": f"s{i}"}) for i in range(3)]

    async def probe() -> tuple[list[Any], float]:
        bus = Bus({0: 0.3})
        async with serving(bus) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            writer.write(b"".join(hook("connect", body) for body in bodies))
            got = await answers(reader, 3)
            waited = time.monotonic() - started
            writer.write(hook("connect", bodies[0]))  # the connection is still usable
            got += await answers(reader, 1)
            writer.close()
        return got, waited

    got, waited = asyncio.run(probe())
    assert [body for _, _, body in got] == [*bodies, bodies[0]] and waited >= 0.3


def test_a_request_behind_an_answered_hook_is_not_cut_by_the_keep_alive_timeout() -> None:
    """A hook answered by the protocol arms the keep-alive timeout; a slow request pipelined
    right behind it (longer than the timeout) must still get its answer."""

    def slow_route(app: IngestApp) -> None:
        @app.get("/slow")
        async def slow() -> dict[str, bool]:
            await asyncio.sleep(1.5)
            return {"slow": True}

    async def probe() -> list[Any]:
        async with serving(Bus(), keep_alive_s=1, extra=slow_route) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(hook("connect", CONNECT) + b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            got = await answers(reader, 2)
            writer.close()
        return got

    got = asyncio.run(probe())
    assert got[0][2] == CONNECT and got[1][2] == b'{"slow":true}'


def test_a_hook_being_read_when_the_server_stops_is_answered_then_closed() -> None:
    """As uvicorn lets a request in progress finish: the hook whose body was still coming
    when the server began to stop is answered (``connection: close``), then the connection
    closes and the server exits."""

    async def probe() -> tuple[list[Any], bytes, Bus]:
        bus = Bus()
        app = create_app(IngestConfig(max_body_bytes=4096), bus)  # type: ignore[arg-type]
        guard = HttpGuard(ConnectionLimits(header_timeout_s=30, body_timeout_s=30))
        port = free_port()
        config = uvicorn.Config(
            app, port=port, http=guard.protocol_class(app.hooks), log_level="warning",
            lifespan="off", timeout_graceful_shutdown=5,
        )  # fmt: skip
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        for _ in range(500):  # uvicorn has no started event; poll its flag (at most 5 s)
            if server.started:
                break
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = hook("connect", CONNECT)
        writer.write(request[:-10])
        await asyncio.sleep(0.1)
        server.should_exit = True
        await asyncio.sleep(0.3)  # the server is stopping, the connection still open
        writer.write(request[-10:])
        got = await answers(reader, 1)
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await asyncio.wait_for(task, 10)
        return got, rest, bus

    got, rest, bus = asyncio.run(probe())
    [(status, headers, body)] = got
    assert status == b"HTTP/1.1 200 OK" and body == CONNECT and headers[b"connection"] == b"close"
    assert rest == b"" and len(bus.envelopes) == 1
