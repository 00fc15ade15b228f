"""Credentials for the read side (dashboard, KPI API, exports, /metrics, /docs), not for hooks.

WCS authenticates hooks with its own secrets (``ingest.auth``); readers (browsers, Grafana,
Prometheus) get separate credentials: a bearer token and/or an HTTP Basic user. The read
side is *required* to authenticate when the service listens beyond loopback or any
credentials are configured, unless explicitly opened (``--read-open``); then every read
route answers 401 without valid credentials. ``/health`` and ``/wcs/*`` are never guarded
here. Comparisons are constant-time; nothing here logs a credential.

The FastAPI side (the route guard, its OpenAPI schemes) is ``ingest.read_guard``: this module
imports no web framework, so the settings (and the CLI commands that serve nothing) load
without FastAPI.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass

from ingest.auth import Headers

REALM = "wcs-analytics read"


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it resolves beyond loopback


@dataclass(frozen=True, slots=True, repr=False)
class ReadAuth:
    """``required``: refuse requests without valid credentials. ``token``: accepted as
    ``Authorization: Bearer <token>``; ``basic``: (user, password) for ``Authorization: Basic``."""

    required: bool = False
    token: str | None = None
    basic: tuple[str, str] | None = None

    @classmethod
    def decide(
        cls,
        host: str,
        *,
        hook_auth: bool,
        token: str | None,
        basic: tuple[str, str] | None,
        open_read: bool,
    ) -> ReadAuth:
        """The read side's rule for a service listening on ``host``."""
        credentials = token is not None or basic is not None
        required = not open_read and (credentials or hook_auth or not is_loopback(host))
        return cls(required, token, basic)

    @property
    def unusable(self) -> bool:
        """Required but nothing can satisfy it (no credentials configured): all 401."""
        return self.required and self.token is None and self.basic is None

    def allows(self, headers: Headers) -> bool:
        """Whether a request with these raw ASGI headers may read."""
        if not self.required:
            return True
        for name, value in headers:
            if name.lower() != b"authorization":
                continue
            scheme, _, given = value.strip().partition(b" ")
            scheme, given = scheme.lower(), given.strip()
            if scheme == b"bearer" and self.token is not None:
                if hmac.compare_digest(given, self.token.encode()):
                    return True
            elif scheme == b"basic" and self.basic is not None and _basic_ok(given, self.basic):
                return True
        return False

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` of a 401: Basic when configured (browsers then prompt)."""
        scheme = "Basic" if self.basic is not None else "Bearer"
        return f'{scheme} realm="{REALM}", charset="UTF-8"'

    def __repr__(self) -> str:
        user = None if self.basic is None else self.basic[0]
        token = None if self.token is None else "***"
        return f"ReadAuth(required={self.required}, token={token}, basic_user={user!r})"


def _basic_ok(encoded: bytes, expected: tuple[str, str]) -> bool:
    try:
        given = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, f"{expected[0]}:{expected[1]}".encode())
