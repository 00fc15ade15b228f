"""Envelopes the service could not keep: counted by reason, shown on /health, logged per interval.

Two outcomes, by the ``--spool-full`` policy (docs/production.md#when-envelopes-cannot-be-kept):
``dropped`` -- WCS got 200 and the envelope is lost; ``rejected`` -- WCS got 503 (it logs or
fails the operation per its ``restOnError``). Both are counted per reason
(``wcs_envelopes_dropped_total`` / ``wcs_envelopes_rejected_total``), make /health say
``degraded`` for ``DEGRADED_FOR_S``, and are logged as one summary line per ``LOG_EVERY_S``
(the first at once, the rest of a burst when the interval ends), never one per envelope.
Call from the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger(__name__)

LOG_EVERY_S: Final = 10.0
DEGRADED_FOR_S: Final = 300.0
REASONS: Final = ("spool_full", "spool_write_failed", "publish_error")


class DropLog:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, every_s: float = LOG_EVERY_S
    ) -> None:
        self.clock, self.every_s = clock, every_s
        self.dropped: dict[str, int] = dict.fromkeys(REASONS, 0)
        self.rejected: dict[str, int] = dict.fromkeys(REASONS, 0)
        self.last_at: float | None = None
        self._logged_at = float("-inf")
        self._pending: dict[tuple[str, str], int] = {}  # (outcome, reason) -> since last line
        self._detail = ""
        self._timer: asyncio.TimerHandle | None = None

    def note(self, reason: str, detail: str, *, rejected: bool = False, count: int = 1) -> None:
        """``count`` envelopes not kept (``rejected``: WCS was answered 503, else 200)."""
        counts = self.rejected if rejected else self.dropped
        counts[reason] = counts.get(reason, 0) + count
        outcome = "rejected (503)" if rejected else "dropped (answered 200)"
        key = (outcome, reason)
        self._pending[key] = self._pending.get(key, 0) + count
        self._detail = detail
        now = self.last_at = self.clock()
        if now - self._logged_at >= self.every_s:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (replay, tests): the next note or flush reports
                return
            self._timer = loop.call_later(self._logged_at + self.every_s - now, self.flush)

    def flush(self) -> None:
        """Log what was noted since the last line (one line), if anything."""
        self._timer = None
        if not self._pending:
            return
        parts = ", ".join(
            f"{n} {outcome}: {reason}" for (outcome, reason), n in self._pending.items()
        )
        since = self.clock() - self._logged_at
        window = (
            f"in the last {since:.0f}s" if since < 10 * self.every_s else "since the last report"
        )
        log.error(
            "envelopes not kept %s: %s; last error: %s; totals dropped %d, rejected %d",
            window,
            parts,
            self._detail,
            sum(self.dropped.values()),
            sum(self.rejected.values()),
        )
        self._pending.clear()
        self._logged_at = self.clock()

    def degraded(self) -> bool:
        return self.last_at is not None and self.clock() - self.last_at < DEGRADED_FOR_S

    def health(self) -> dict[str, Any]:
        """Fields for /health: ``status: degraded`` while losses are recent, and the totals."""
        fields: dict[str, Any] = {}
        if self.last_at is not None:
            fields["envelopes_dropped"] = {k: v for k, v in self.dropped.items() if v}
            fields["envelopes_rejected"] = {k: v for k, v in self.rejected.items() if v}
            fields["last_loss_s_ago"] = round(self.clock() - self.last_at, 1)
        if self.degraded():
            fields["status"] = "degraded"
        return fields

    def metrics(self) -> str:
        lines = []
        for name, counts, text in (
            ("wcs_envelopes_dropped_total", self.dropped, "answered 200 to WCS but not kept"),
            (
                "wcs_envelopes_rejected_total",
                self.rejected,
                "refused with 503 (--spool-full reject)",
            ),
        ):
            lines += [f"# HELP {name} Envelopes {text}, by reason.", f"# TYPE {name} counter"]
            lines += [f'{name}{{reason="{reason}"}} {n}' for reason, n in counts.items()]
        return "\n".join(lines) + "\n"
