"""Configuration of the ingest HTTP edge (built from the service settings; reads no env)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

DEFAULT_REDACT_KEYS: Final = ("sipPassword", "authToken", "token")


@dataclass(frozen=True, slots=True, repr=False)
class IngestConfig:
    """What the hook endpoint enforces.

    ``redact_keys``: body keys removed (at any depth, case-insensitively) before
    the body enters the envelope; ``DEFAULT_REDACT_KEYS`` are removed even when
    absent here. ``hmac_secret``: WCS ``rest_hook_secret_key``; when set every
    hook needs ``Authorization: WCS <hex HMAC-MD5 of the raw body>``.
    ``basic_auth``: optional ``(user, password)`` for HTTP Basic. When both are
    set, both are required. ``rest_client_config``: added as
    ``restClientConfig`` to the answer to ``connect``. ``repr`` hides secrets.
    """

    max_body_bytes: int = 1 << 20
    redact_keys: tuple[str, ...] = DEFAULT_REDACT_KEYS
    hmac_secret: str | None = None
    basic_auth: tuple[str, str] | None = None
    rest_client_config: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {self.max_body_bytes}")
        if self.hmac_secret == "":
            raise ValueError("hmac_secret must not be empty (use None to disable HMAC)")
        if self.basic_auth is not None and ":" in self.basic_auth[0]:
            raise ValueError("basic_auth user must not contain ':'")

    def __repr__(self) -> str:
        secret = None if self.hmac_secret is None else "***"
        basic = None if self.basic_auth is None else (self.basic_auth[0], "***")
        return (
            f"IngestConfig(max_body_bytes={self.max_body_bytes}, "
            f"redact_keys={self.redact_keys!r}, hmac_secret={secret!r}, "
            f"basic_auth={basic!r}, rest_client_config={self.rest_client_config!r})"
        )
