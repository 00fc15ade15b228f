"""OpenAPI text for the hook route, generated from the catalog (so the docs never drift)."""

from __future__ import annotations

from typing import Any, Final

from events.catalog import ALIASES, CANONICAL, FAMILIES


def method_description() -> str:
    """Markdown listing canonical hook names by family, then the aliases."""
    lines = [
        "WCS REST hook name, matched case-insensitively. A name matching "
        "`[A-Za-z][A-Za-z0-9_]{0,63}` that is not listed is accepted as family `unknown`.",
        "",
    ]
    for family in FAMILIES:
        names = [name for name, fam in CANONICAL.items() if fam == family]
        if names:
            lines.append(f"- **{family}**: " + ", ".join(f"`{name}`" for name in names))
    aliases = ", ".join(f"`{alias}` → `{name}`" for alias, name in ALIASES.items())
    lines += ["", f"Aliases: {aliases}."]
    return "\n".join(lines)


def _error(description: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"error": {"type": "string"}}}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


HOOK_DESCRIPTION: Final = (
    "Receives one WCS REST hook call and answers 200 with the request body echoed "
    "byte for byte (for `connect`, plus `restClientConfig` when configured). The call "
    "is answered without waiting for analytics: the redacted body is published to the "
    "bus as an envelope stamped with the receive time."
)

HOOK_OPENAPI: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
}

HOOK_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "The request body, unchanged",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    400: _error("Body is not JSON, or not a JSON object"),
    401: _error("HTTP Basic configured and no credentials sent"),
    403: _error("Wrong Basic credentials, or missing/wrong `Authorization: WCS` signature"),
    404: _error("Not a valid hook name"),
    405: _error("Not a POST"),
    413: _error("Body larger than the configured limit"),
    503: _error("The event cannot be kept (spool full or unwritable) and --spool-full is reject"),
}
