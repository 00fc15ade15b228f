"""Inserts in a background thread, so that writing a batch overlaps processing the next one.

One batch in flight at a time: ``submit`` waits while the previous one is still being
written -- that wait is the backpressure the owner feels when the database is slower
than its input. A failed write is retried with backoff (0.5 s doubling to 30 s) until it
succeeds or ``close`` gives up on it; nothing is dropped. Only the owner thread calls
``submit``/``wait``/``close``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial

from sinks.batch import Batch
from sinks.writer import ClickHouseWriter

log = logging.getLogger(__name__)

After = Callable[[], None]


class InsertThread:
    def __init__(self, writer: ClickHouseWriter) -> None:
        self._writer = writer
        self._cond = threading.Condition()
        self._job: tuple[Batch, After | None] | None = None
        self._since = 0.0
        self._stopping = False
        self._abandon = False
        self.failures = 0  # failed write attempts (each retried)
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="clickhouse-insert", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._job is not None

    def in_flight(self) -> tuple[Batch | None, float]:
        """The batch being written (None when idle) and for how many seconds it has been."""
        job, since = self._job, self._since
        if job is None:
            return None, 0.0
        return job[0], time.monotonic() - since

    def submit(
        self, batch: Batch, after: After | None = None, timeout: float | None = None
    ) -> bool:
        """Queue ``batch`` (``after`` runs in the thread once it is written). Waits while the
        previous batch is in flight; False when ``timeout`` passed first (nothing queued)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._job is None, timeout):
                return False
            self._job, self._since = (batch, after), time.monotonic()
            self._cond.notify_all()
            return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until nothing is in flight; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._job is None, timeout)

    def close(self, timeout: float | None = None) -> Batch | None:
        """Finish the batch in flight (within ``timeout``) and stop; returns what could not be
        written (the caller spools its envelopes), None when everything was."""
        done = self.wait(timeout)
        with self._cond:
            self._stopping = True
            self._abandon = not done
            left = None if self._job is None else self._job[0]
            self._cond.notify_all()
        # an insert already running is not interrupted; it is not waited for either
        self._thread.join(None if done else 1.0)
        return left

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._stopping)
                if self._job is None or self._abandon:
                    return
                batch, after = self._job
            if not self._retried(partial(self._writer.write, batch)):
                return  # abandoned by close(): the batch stays with the owner
            if after is not None and not self._retried(after):
                return
            with self._cond:
                self._job = None
                self._cond.notify_all()

    def _retried(self, work: Callable[[], object]) -> bool:
        """Run ``work`` until it succeeds, backing off; False when abandoned first. (A batch
        written in part is retried with what is left: ``write`` drops what it wrote.)"""
        delay = 0.5
        while True:
            try:
                work()
                return True
            except Exception as exc:  # retried in the writer already; keep it and back off
                self.failures += 1
                self.last_error = str(exc)[:300]
                log.warning("insert into ClickHouse failed (retrying in %.1fs): %s", delay, exc)
            with self._cond:
                if self._cond.wait_for(lambda: self._abandon, delay):
                    return False
            delay = min(delay * 2, 30.0)
