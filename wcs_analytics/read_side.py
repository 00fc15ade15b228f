"""The read side's credentials of a service, with one start-up line saying what applies."""

from __future__ import annotations

import logging

from ingest.read_auth import ReadAuth
from wcs_analytics.settings import Settings

log = logging.getLogger("wcs_analytics")


def read_side(settings: Settings, host: str | None = None) -> ReadAuth:
    """``settings.read_auth(host)``, logged once (never the credentials themselves)."""
    auth = settings.read_auth(host)
    if auth.unusable:
        log.warning(
            "read side locked (listening beyond loopback or hook auth on) and no read "
            "credentials set: /dashboard, /api/*, /metrics and /docs answer 401; set "
            "--read-token and/or --read-user/--read-password, or --read-open"
        )
    elif auth.required:
        kinds = [k for k, v in (("bearer token", auth.token), ("Basic", auth.basic)) if v]
        log.info("read side requires credentials (%s)", " or ".join(kinds))
    else:
        log.info("read side open: listening on loopback without auth (or --read-open)")
    return auth
