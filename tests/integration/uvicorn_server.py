"""A real uvicorn server on the test's event loop (tests of the HTTP protocol and the guard)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn

from tests.integration.kafka_ingest_helpers import free_port

__all__ = ["free_port", "running"]


@asynccontextmanager
async def running(config: Callable[[int], uvicorn.Config]) -> AsyncIterator[int]:
    """Serve ``config(port)`` on a free port until the block ends; yields the port."""
    port = free_port()
    server = uvicorn.Server(config(port))
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # uvicorn has no started event; poll its flag (at most 5 s)
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
