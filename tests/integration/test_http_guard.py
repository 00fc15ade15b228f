"""A real uvicorn server behind the connection guard closes a slow client at the header
deadline, after answering it once on the same keep-alive connection."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import uvicorn
from fastapi import FastAPI

from ingest.connections import ConnectionLimits
from ingest.http_guard import HttpGuard

pytestmark = pytest.mark.integration


async def _serve_and_probe() -> tuple[float, bytes, str]:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    guard = HttpGuard(ConnectionLimits(header_timeout_s=0.6, body_timeout_s=0.6))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, port=port, http=guard.protocol_class(), log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # uvicorn has no started event; poll its flag (at most 5 s)
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")  # answered, then kept alive
        answer = await reader.readuntil(b'{"ok":true}')
        started = time.monotonic()
        writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        await asyncio.wait_for(reader.read(), 5)  # EOF once the server closed it
        waited = time.monotonic() - started
        writer.close()
        return waited, answer, guard.metrics()
    finally:
        server.should_exit = True
        await task


def test_a_real_server_closes_a_slow_client_at_the_header_deadline() -> None:
    waited, answer, metrics = asyncio.run(_serve_and_probe())
    assert answer.startswith(b"HTTP/1.1 200")
    assert 0.1 < waited < 2.0  # deadline 0.6 s from the answer, swept every 0.5 s
    assert 'wcs_http_connections_closed_total{reason="header_timeout"} 1' in metrics
