"""``GET /api/export/{billing|cdr|sdr}``: exports streamed by the process that owns the data.

Query parameters mirror ``wcs-analytics export``: ``from``, ``to`` (ISO 8601 or epoch ms),
``group_by``, ``rounding`` (A/B), ``format``. A producer thread runs the export inside
``access.run_sync`` (the client stays locked while it streams) and hands chunks over a
bounded queue; the response pulls them off the event loop. A bad parameter answers 400,
a query that fails before the first byte 500; a failure mid-stream cuts the response.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from contextlib import closing
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from sinks.exports import CONTENT_TYPES, ExportSpec, export_chunks, make_spec
from wcs_analytics.api.access import ReadAccess

_DONE = object()
_QUEUE_CHUNKS = 8


class _Producer:
    """Runs one export on a worker thread; ``get`` blocks for the next chunk, _DONE or an error."""

    def __init__(self, access: ReadAccess, spec: ExportSpec) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(_QUEUE_CHUNKS)
        self._cancelled = threading.Event()
        self._database, self._spec = access.database, spec
        self._thread = threading.Thread(target=self._run, args=(access,), daemon=True)
        self._thread.start()

    def _run(self, access: ReadAccess) -> None:
        try:
            access.run_sync(self._fill)
            self._put(_DONE)
        except Exception as exc:  # handed to the response, which reports or cuts it
            self._put(exc)

    def _fill(self, client: Any) -> None:
        with closing(export_chunks(client, self._database, self._spec)) as chunks:
            for chunk in chunks:
                if not self._put(chunk):
                    return

    def _put(self, item: Any) -> bool:
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> Any:
        return self._queue.get()

    def cancel(self) -> None:
        self._cancelled.set()


async def _body(producer: _Producer, first: Any) -> AsyncIterator[bytes]:
    """``first`` was already taken from the producer: a chunk or _DONE."""
    try:
        if first is _DONE:
            return
        yield first
        while True:
            item = await asyncio.to_thread(producer.get)
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        producer.cancel()


def _filename(spec: ExportSpec) -> str:
    extension = "txt" if spec.fmt == "sdr" else spec.fmt
    return f"{spec.kind}-{spec.from_ms}-{spec.to_ms}.{extension}"


_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The export file (csv, jsonl, parquet or SDR lines)",
        "content": {media: {} for media in CONTENT_TYPES.values()},
    },
    400: {
        "description": "A bad parameter: not a time, out of 1970..2100, an empty period or one "
        "over 400 days, an unknown group-by key, rounding or format",
        "content": {"application/json": {"schema": _ERROR}},
    },
    500: {
        "description": "The export query failed before the first byte",
        "content": {"application/json": {"schema": _ERROR}},
    },
}


def create_router(access: ReadAccess) -> APIRouter:
    router = APIRouter()

    @router.get("/api/export/{kind}", response_class=Response, responses=RESPONSES)
    async def export(
        kind: Literal["billing", "cdr", "sdr"],
        start: str = Query(alias="from"),
        end: str = Query(alias="to"),
        group_by: str | None = None,
        rounding: str | None = None,
        format: str | None = None,
        bill_failed_messages: bool = False,
    ) -> Response:
        try:
            spec = make_spec(kind, start, end, group_by, rounding, format, bill_failed_messages)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        producer = _Producer(access, spec)
        first = await asyncio.to_thread(producer.get)  # errors before any byte become a 500
        if isinstance(first, BaseException):
            return JSONResponse({"error": f"export failed: {first}"}, status_code=500)
        headers = {"Content-Disposition": f'attachment; filename="{_filename(spec)}"'}
        return StreamingResponse(
            _body(producer, first),
            media_type=CONTENT_TYPES[spec.fmt],
            headers=headers,
        )

    return router
