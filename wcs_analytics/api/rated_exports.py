"""Rated exports over the API (docs/rating.md); mounted by ``build_routers`` like every
read router, so the read-side authentication applies.

* ``POST /api/export/{billing|cdr}/rated?deck=NAME&from=..&to=..&group_by=..&format=..``
  rates with the deck ``<--rates-dir>/NAME``, records the run and answers the file, with
  headers ``X-Export-Id``, ``X-Export-Status`` (first, same, correction), ``X-Export-Corrects``.
* ``GET /api/export-runs?from=..&to=..[&kind=..]``: recorded runs overlapping the period.
* ``GET /api/export-runs/{id}/manifest``: control totals (and the correction's, if any).
* ``GET /api/export-runs/{id}/correction?format=..``: what changed since the corrected run.

The file is built in memory before it is sent (rating needs every line first). 400 for
bad input (deck problems listed), 404 for an unknown run, 500 if the database fails.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from sinks.exports import CONTENT_TYPES, make_spec
from sinks.exports.ledger_store import list_runs
from sinks.exports.manifest import manifest
from sinks.exports.rated import correction_chunks, rated_chunks, recorded_run, run_rated
from sinks.exports.spec import parse_time
from sinks.rating.load import DeckError, load_deck
from wcs_analytics.api.access import ReadAccess

_DECK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_RUN_FIELDS = ("export_id", "kind", "status", "corrects", "deck_revisions", "rows", "sessions",
               "unrated", "billed_seconds")  # fmt: skip


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


_JSON = {
    "application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}
}
_BAD: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "A bad parameter, or the deck's problems (file, line, field)",
        "content": _JSON,
    }
}
_RATED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rated export file (csv, jsonl or parquet)",
        "content": {media: {} for media in CONTENT_TYPES.values()},
    },
    **_BAD,
    500: {"description": "The export failed in the database", "content": _JSON},
}
_UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such export run", "content": _JSON}
}


def create_router(access: ReadAccess, rates_dir: Path | None) -> APIRouter:
    router = APIRouter()

    @router.post("/api/export/{kind}/rated", response_class=Response, responses=_RATED)
    async def rated(
        kind: Literal["billing", "cdr"],
        deck: str,
        start: str = Query(alias="from"),
        end: str = Query(alias="to"),
        group_by: str | None = None,
        format: str | None = None,
    ) -> Response:
        try:
            spec = make_spec(kind, start, end, group_by, None, format)
        except ValueError as exc:
            return _error(str(exc))
        if rates_dir is None:
            return _error("this service has no --rates-dir: rated exports are off")
        if not _DECK_NAME.match(deck):
            return _error(f"deck name {deck!r}: letters, digits, '.', '_', '-'")
        try:
            loaded = load_deck(rates_dir / deck)
        except DeckError as exc:
            return _error(str(exc))

        def work(client: Any) -> tuple[Any, bytes]:
            run = run_rated(client, access.database, spec, loaded, int(time.time() * 1000))
            return run, b"".join(rated_chunks(client, access.database, run.record, spec.fmt))

        try:
            run, body = await access.run(work)
        except Exception as exc:  # the driver's errors
            return _error(f"export failed: {exc}", 500)
        record = run.record
        headers = {
            "Content-Disposition": f'attachment; filename="{kind}-{record.export_id}.{spec.fmt}"',
            "X-Export-Id": record.export_id,
            "X-Export-Status": record.status,
            "X-Export-Corrects": record.corrects,
        }
        return Response(body, media_type=CONTENT_TYPES[spec.fmt], headers=headers)

    @router.get("/api/export-runs", responses=_BAD)
    async def runs(
        start: str = Query(alias="from"),
        end: str = Query(alias="to"),
        kind: Literal["billing", "cdr"] | None = None,
    ) -> Response:
        try:
            span = parse_time(start), parse_time(end)
        except ValueError as exc:
            return _error(str(exc))
        found = await access.run(lambda c: list_runs(c, access.database, kind, *span))
        return JSONResponse([{f: getattr(r, f) for f in _RUN_FIELDS} for r in found])

    @router.get("/api/export-runs/{export_id}/manifest", responses=_UNKNOWN)
    async def run_manifest(export_id: str) -> Response:
        run = await access.run(lambda c: recorded_run(c, access.database, export_id))
        if run is None:
            return _error(f"no export run {export_id!r}", 404)
        return JSONResponse(manifest(run))

    @router.get(
        "/api/export-runs/{export_id}/correction",
        response_class=Response,
        responses={**_RATED, **_UNKNOWN},
    )
    async def correction(
        export_id: str, format: Literal["csv", "jsonl", "parquet"] = "csv"
    ) -> Response:
        if format not in ("csv", "jsonl", "parquet"):
            return _error("format: csv, jsonl or parquet")

        def work(client: Any) -> bytes | None:
            run = recorded_run(client, access.database, export_id)
            if run is None or not run.record.corrects:
                return None
            return b"".join(correction_chunks(client, access.database, run.record, format))

        body = await access.run(work)
        if body is None:
            return _error(f"no correction run {export_id!r}", 404)
        return Response(body, media_type=CONTENT_TYPES[format])

    return router
