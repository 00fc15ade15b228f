"""Authentication of WCS hook calls: the WCS HMAC signature and optional HTTP Basic.

WCS (``rest_hook_send_hash=true``) sends ``Authorization: WCS <hex HMAC-MD5 of
the raw body keyed with rest_hook_secret_key>``. HTTP Basic is the app's
``restUsername``/``restPassword``. Every configured check is required: with
both configured the request carries two ``Authorization`` header lines. All
comparisons are constant-time. Nothing here logs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence

Headers = Sequence[tuple[bytes, bytes]]

UNAUTHORIZED = 401  # no Basic credentials: the client may retry with them
FORBIDDEN = 403  # wrong Basic credentials, or missing/wrong WCS signature


def wcs_signature(secret: str, raw: bytes) -> str:
    """The hex HMAC-MD5 WCS puts after ``Authorization: WCS``."""
    return hmac.new(secret.encode(), raw, "md5").hexdigest()


def _credentials(headers: Headers, scheme: bytes) -> bytes | None:
    """Credentials of the first ``Authorization: <scheme> ...`` line (scheme case-insensitive)."""
    for name, value in headers:
        if name.lower() == b"authorization":
            found, _, rest = value.strip().partition(b" ")
            if found.lower() == scheme:
                return rest.strip()
    return None


class Authenticator:
    """Checks one request; ``check`` returns None when accepted, else 401 or 403."""

    __slots__ = ("_basic", "_hmac")

    def __init__(self, hmac_secret: str | None, basic_auth: tuple[str, str] | None) -> None:
        self._hmac = None if hmac_secret is None else hmac.new(hmac_secret.encode(), None, "md5")
        self._basic = None
        if basic_auth is not None:
            self._basic = f"{basic_auth[0]}:{basic_auth[1]}".encode()

    @property
    def enabled(self) -> bool:
        return self._hmac is not None or self._basic is not None

    def check(self, raw: bytes, headers: Headers) -> int | None:
        """Status to refuse with, or None. ``headers`` are ASGI raw (name, value) pairs."""
        if self._basic is not None:
            status = _check_basic(self._basic, headers)
            if status is not None:
                return status
        if self._hmac is not None and not _check_hmac(self._hmac, raw, headers):
            return FORBIDDEN
        return None


def _check_basic(expected: bytes, headers: Headers) -> int | None:
    encoded = _credentials(headers, b"basic")
    if encoded is None:
        return UNAUTHORIZED
    try:
        given = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return FORBIDDEN
    return None if hmac.compare_digest(given, expected) else FORBIDDEN


def _check_hmac(keyed: hmac.HMAC, raw: bytes, headers: Headers) -> bool:
    given = _credentials(headers, b"wcs")
    if given is None:
        return False
    mac = keyed.copy()
    mac.update(raw)
    return hmac.compare_digest(given.lower(), mac.hexdigest().encode())
