"""Read access to ClickHouse for the API: its own client, queries off the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from sinks.client import connect


class ReadAccess:
    """Lazily opened client (chDB: the same engine path as the writer) behind a lock.

    ``run_sync`` is for worker threads (streaming exports); ``run`` awaits it off the
    event loop so hooks are never slowed by a query.
    """

    def __init__(self, dsn: str, database: str) -> None:
        self.dsn, self.database = dsn, database
        self._client: Any = None
        self._lock = threading.Lock()

    def run_sync(self, work: Callable[[Any], Any]) -> Any:
        with self._lock:
            if self._client is None:
                self._client = connect(self.dsn, self.database)
            return work(self._client)

    async def run(self, work: Callable[[Any], Any]) -> Any:
        return await asyncio.to_thread(self.run_sync, work)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
