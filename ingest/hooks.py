"""The hook logic: validate, authenticate, parse, redact, stamp, publish, answer.

One code path for both HTTP adapters (the ASGI fast path and the documented
FastAPI route). ``handle`` never blocks and never raises for bad input: every
outcome becomes a status, a body and one ``wcs_hooks_total`` increment. Bad
input is never published. Bodies are never logged (they carry secrets).

A bus whose ``publish`` returns an awaitable (Kafka) makes ``handle`` return a
coroutine of the answer instead; the in-memory bus keeps the synchronous path.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import orjson

from events.bus import Bus, BusRejected
from events.catalog import Method, is_valid_name, resolve
from events.envelope import make
from events.jsonbody import loads
from ingest.auth import UNAUTHORIZED, Authenticator, Headers
from ingest.config import DEFAULT_REDACT_KEYS, IngestConfig
from ingest.drops import DropLog
from ingest.metrics import HookMetrics
from ingest.redact import Redactor

log = logging.getLogger(__name__)

INVALID_LABEL: Final = "_invalid"  # metric label of names that are not hook names
OTHER_LABEL: Final = "_other"  # unknown-family names beyond MAX_UNKNOWN_LABELS
MAX_UNKNOWN_LABELS: Final = 32
_MAX_CACHED: Final = 1024
_JSON_KINDS: Final = {list: "an array", str: "a string", int: "a number", float: "a number"}

Answer = tuple[int, bytes]
PendingAnswer = Coroutine[Any, Any, Answer]


def error(message: str) -> bytes:
    return orjson.dumps({"error": message})


class HookHandler:
    """Answers one WCS hook call; shared by both HTTP adapters. Call on the event loop."""

    def __init__(
        self,
        config: IngestConfig,
        bus: Bus,
        metrics: HookMetrics,
        now_ms: Callable[[], int],
        ids: Callable[[], str],
        drops: DropLog | None = None,
    ) -> None:
        self.max_body_bytes = config.max_body_bytes
        self._redact = Redactor((*DEFAULT_REDACT_KEYS, *config.redact_keys))
        self._auth = Authenticator(config.hmac_secret, config.basic_auth)
        self._rest_client_config = config.rest_client_config
        self._bus = bus
        self._metrics = metrics
        self._now_ms = now_ms
        self._ids = ids
        self._drops = drops if drops is not None else DropLog()
        self._methods: dict[str, tuple[Method, str] | None] = {}
        self._unknown_labels: set[str] = set()

    def handle(self, method: str, raw: bytes, headers: Headers) -> Answer | PendingAnswer:
        """Status and response body for ``POST /wcs/{method}`` with body ``raw``.

        200 echoes ``raw`` unchanged (``connect`` gets ``restClientConfig`` added
        when configured); 404 invalid name, 401/403 auth, 400 not a JSON object.
        A coroutine of that answer when the bus asked to be awaited; it answers
        503 only when the bus raised ``BusRejected``.
        """
        resolved = self._resolve(method)
        if resolved is None:
            return self._refuse(INVALID_LABEL, "bad_method", 404, _bad_name(method))
        hook, label = resolved
        if self._auth.enabled:
            refused = self._auth.check(raw, headers)
            if refused is not None:
                return self._refuse_auth(label, refused)
        try:
            body = loads(raw)
        except orjson.JSONDecodeError as exc:
            return self._refuse(label, "bad_json", 400, f"body is not valid JSON: {exc}")
        if type(body) is not dict:
            kind = _JSON_KINDS.get(type(body), "null" if body is None else "a boolean")
            return self._refuse(label, "not_object", 400, f"body must be a JSON object, not {kind}")
        pending = self._publish(hook, label, body, raw)
        answer: Answer = (200, raw)
        if hook.name == "connect" and self._rest_client_config is not None:
            answer = 200, orjson.dumps({**body, "restClientConfig": self._rest_client_config})
        return answer if pending is None else self._confirm(pending, label, answer)

    def too_large(self, method: str) -> Answer:
        """The body exceeded ``max_body_bytes`` (detected by the adapter while reading)."""
        message = f"body exceeds the limit of {self.max_body_bytes} bytes"
        return self._refuse(self._label(method), "too_large", 413, message)

    def wrong_http_method(self, method: str) -> Answer:
        return self._refuse(self._label(method), "bad_http_method", 405, "hooks must be POST")

    def disconnected(self, method: str) -> Answer:
        message = "client disconnected before the body was complete"
        return self._refuse(self._label(method), "disconnected", 400, message)

    def _publish(
        self, hook: Method, label: str, body: dict[str, Any], raw: bytes
    ) -> Awaitable[None] | None:
        try:
            pending = self._bus.publish(
                make(hook, self._redact(body, raw), self._now_ms(), self._ids())
            )
        except BusRejected as exc:
            return _rejected(str(exc))
        except Exception as exc:  # the bus must not raise; if it does, WCS still gets its answer
            self._publish_error(label, exc)
            return None
        if pending is None:
            self._metrics.count(label, "ok")
        return pending

    async def _confirm(self, pending: Awaitable[None], label: str, answer: Answer) -> Answer:
        """Wait for the bus's hand-off; 503 only when it refused the envelope."""
        try:
            await pending
        except BusRejected as exc:
            return self._refuse(label, "rejected", 503, str(exc) or "bus refused the event")
        except Exception as exc:  # the bus must not raise; if it does, WCS still gets its answer
            self._publish_error(label, exc)
            return answer
        self._metrics.count(label, "ok")
        return answer

    def _publish_error(self, label: str, exc: Exception) -> None:
        """A bus bug: counted as a dropped envelope, logged per interval (traceback at debug)."""
        self._metrics.count(label, "publish_error")
        self._drops.note("publish_error", f"{label}: {exc!r}", rejected=False)
        log.debug("publishing a %s envelope failed", label, exc_info=exc)

    def _refuse(self, label: str, outcome: str, status: int, message: str) -> Answer:
        self._metrics.count(label, outcome)
        return status, error(message)

    def _refuse_auth(self, label: str, status: int) -> Answer:
        if status == UNAUTHORIZED:
            return self._refuse(label, "unauthorized", status, "HTTP Basic credentials required")
        return self._refuse(label, "forbidden", status, "wrong credentials or WCS signature")

    def _resolve(self, name: str) -> tuple[Method, str] | None:
        """(method, metric label), or None for an invalid name; cached (bounded)."""
        try:
            return self._methods[name]
        except KeyError:
            pass
        found = None
        if is_valid_name(name):
            hook = resolve(name)
            found = (hook, self._label_of(hook))
        if len(self._methods) < _MAX_CACHED:
            self._methods[name] = found
        return found

    def _label(self, name: str) -> str:
        resolved = self._resolve(name)
        return INVALID_LABEL if resolved is None else resolved[1]

    def _label_of(self, hook: Method) -> str:
        """Canonical names label themselves; unknown names too, up to a bound (cardinality)."""
        if hook.family != "unknown" or hook.name in self._unknown_labels:
            return hook.name
        if len(self._unknown_labels) < MAX_UNKNOWN_LABELS:
            self._unknown_labels.add(hook.name)
            return hook.name
        return OTHER_LABEL


async def _rejected(message: str) -> None:
    raise BusRejected(message or "event refused: it cannot be kept")


def _bad_name(name: str) -> str:
    return f"no hook named {name[:80]!r}: a hook name matches [A-Za-z][A-Za-z0-9_]{{0,63}}"
