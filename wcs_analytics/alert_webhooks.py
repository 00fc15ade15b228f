"""Alert webhooks: Alertmanager-compatible or plain JSON POSTs from a background thread.

``WebhookSender.send`` never blocks (it may be called on the event loop): payloads go
into a bounded queue; when it is full the payload is dropped and counted. One daemon
thread POSTs them in order with bounded retries and exponential backoff on transport
errors, 5xx and 429; other 4xx answers are not retried. Stdlib only (urllib).
"""

from __future__ import annotations

import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import orjson

log = logging.getLogger(__name__)

FORMATS: Final = ("alertmanager", "json")


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def alertmanager_payload(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alertmanager ``POST /api/v2/alerts`` body; ``endsAt`` only once resolved."""
    out = []
    for row in rows:
        alert: dict[str, Any] = {
            "labels": {
                "alertname": "WcsFailedSpike",
                "rule": row["rule"],
                "family": row["family"],
                "app_key": row["app_key"],
                "node_id": row["node_id"],
                "alert_id": row["alert_id"],
                "severity": "warning",
            },
            "annotations": {
                "summary": (
                    f"{row['failures']} FAILED of {row['attempts']} {row['family']} outcomes "
                    f"({row['ratio']:.0%}) in app {row['app_key']!r}, baseline "
                    f"{row['baseline']:.1f}/min"
                ),
                "window_start": _rfc3339(row["window_start"]),
            },
            "startsAt": _rfc3339(row["fired_at"]),
        }
        if row["resolved_at"] is not None:
            alert["endsAt"] = _rfc3339(row["resolved_at"])
        out.append(alert)
    return out


def plain_payload(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"alerts": [alerts table rows]}`` with times as int epoch ms."""
    return {"alerts": rows}


def payload(fmt: str, rows: list[dict[str, Any]]) -> bytes:
    if fmt == "alertmanager":
        return orjson.dumps(alertmanager_payload(rows))
    if fmt == "json":
        return orjson.dumps(plain_payload(rows))
    raise ValueError(f"webhook format must be one of {FORMATS}, got {fmt!r}")


class WebhookSender:
    """POSTs alert payloads to ``url``; ``close`` waits up to ``timeout_s`` for the queue."""

    def __init__(
        self,
        url: str,
        fmt: str = "alertmanager",
        *,
        max_queue: int = 1000,
        attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        timeout_s: float = 5.0,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        payload(fmt, [])  # validates the format
        self.url, self.fmt = url, fmt
        self.attempts, self.backoff_s, self.max_backoff_s = attempts, backoff_s, max_backoff_s
        self.timeout_s = timeout_s
        self._queue: queue.Queue[bytes | None] = queue.Queue(max_queue)
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self.sent = self.failed = self.dropped = self.retries = 0
        self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
        self._thread.start()

    def send(self, rows: list[dict[str, Any]]) -> None:
        """Queue one POST of ``rows``; never blocks (drops and counts when the queue is full)."""
        try:
            self._queue.put_nowait(payload(self.fmt, rows))
        except queue.Full:
            self.dropped += 1
            log.warning("alert webhook queue full: dropped %d alert(s)", len(rows))

    def close(self, timeout_s: float = 10.0) -> None:
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            self._stop.set()
        self._thread.join(timeout_s)
        self._stop.set()

    def _run(self) -> None:
        while (body := self._queue.get()) is not None:
            self._deliver(body)

    def _deliver(self, body: bytes) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            retry, reason = self._post(body)
            if reason is None:
                self.sent += 1
                return
            if not retry or attempt == self.attempts or self._stop.is_set():
                break
            self.retries += 1
            self._sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)
        self.failed += 1
        log.error("alert webhook %s failed after %d attempt(s): %s", self.url, attempt, reason)

    def _post(self, body: bytes) -> tuple[bool, str | None]:
        """(retry?, failure reason or None on success)."""
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                answer.read()
            return False, None
        except urllib.error.HTTPError as exc:
            return exc.code >= 500 or exc.code == 429, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return True, str(exc)

    def metrics(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped,
                "retries": self.retries}  # fmt: skip
