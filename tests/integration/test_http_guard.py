"""A real uvicorn server behind the connection guard closes a slow client at the header
deadline, after answering it once on the same keep-alive connection."""

from __future__ import annotations

import asyncio
import time

import pytest
import uvicorn
from fastapi import FastAPI

from ingest.connections import ConnectionLimits
from ingest.http_guard import HttpGuard
from tests.integration.uvicorn_server import running

pytestmark = pytest.mark.integration


async def _serve_and_probe() -> tuple[float, bytes, str]:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    guard = HttpGuard(ConnectionLimits(header_timeout_s=0.6, body_timeout_s=0.6))

    def config(port: int) -> uvicorn.Config:
        return uvicorn.Config(app, port=port, http=guard.protocol_class(), log_level="warning")

    async with running(config) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")  # answered, then kept alive
        answer = await reader.readuntil(b'{"ok":true}')
        started = time.monotonic()
        writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        await asyncio.wait_for(reader.read(), 5)  # EOF once the server closed it
        waited = time.monotonic() - started
        writer.close()
        return waited, answer, guard.metrics()


def test_a_real_server_closes_a_slow_client_at_the_header_deadline() -> None:
    waited, answer, metrics = asyncio.run(_serve_and_probe())
    assert answer.startswith(b"HTTP/1.1 200")
    assert 0.1 < waited < 2.0  # deadline 0.6 s from the answer, swept every 0.5 s
    assert 'wcs_http_connections_closed_total{reason="header_timeout"} 1' in metrics
