"""The FastAPI side of the read credentials (``ingest.read_auth.ReadAuth``).

``dependencies(auth)``: mount read routers with it (``include_router(router,
dependencies=...)``) and every route they hold, present or future, is guarded; the security
schemes show up in OpenAPI (Swagger's "Authorize"). ``UNAUTHORIZED_RESPONSE`` documents the
401 of a guarded route.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBearer

from ingest.read_auth import ReadAuth


class _DocumentedBearer(HTTPBearer):
    """Declares the bearer scheme in OpenAPI; the check itself is ``ReadAuth.allows``."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


class _DocumentedBasic(HTTPBasic):
    """Declares the Basic scheme in OpenAPI; the check itself is ``ReadAuth.allows``."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


def dependencies(auth: ReadAuth) -> Sequence[Any]:
    """FastAPI dependencies guarding read routes; empty when the read side is open."""
    if not auth.required:
        return []
    schemes: list[Any] = []
    if auth.token is not None or auth.basic is None:
        schemes.append(Depends(_DocumentedBearer(scheme_name="readToken", auto_error=False)))
    if auth.basic is not None:
        schemes.append(Depends(_DocumentedBasic(scheme_name="readBasic", auto_error=False)))

    async def guard(request: Request) -> None:
        if not auth.allows(request.scope["headers"]):
            raise HTTPException(
                401, "read credentials required", headers={"WWW-Authenticate": auth.challenge()}
            )

    return [*schemes, Depends(guard)]


UNAUTHORIZED_RESPONSE: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "Read credentials missing or wrong (--read-token, --read-user)",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"detail": {"type": "string"}}}
            }
        },
    }
}
