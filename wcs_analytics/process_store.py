"""The embedded engine with its processing in a process of its own (``run --processing
process``): this process answers the hooks, owns the database, the insert thread and the
state store; ``wcs_analytics.processing`` runs the partition runtime. The engine ``run``
drives is the same either way (``processors.embedded.Engine``), and so are the tables.

* **Feeding** queues the batch for the pipe's sender thread and returns: the event loop
  never waits on the processing process. Each feed is acknowledged (with the envelopes
  rejected for their time, the runtime's clock and whether something changed); ``ready``
  is False while more than ``MAX_UNACKED`` envelopes wait for their acknowledgement, and the
  runner stops draining the bus meanwhile (the bus, then the spool, hold the rest).
* **Flushing** sends the flush request (with the state version, as ``Store`` gives it)
  once the previous flush is written; the receiver thread gets the rows, the ``events``
  columns and the state rows back and hands them to the insert thread: rows, then the
  state that describes them.
* **Nothing only in memory is lost.** ``unwritten`` is every envelope fed and not yet in
  the database: those sent since the last flush request, those of the request not answered
  yet, and the batch being written. A processing process that fails stops the service
  (``on_failure``); until it stops, what is not written goes to the spool, as when the
  database stalls, and the next start replays it.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from events.envelope import Envelope, encode
from events.tables import Row
from processors.alert_rules import load_rules
from processors.embedded import Bodies, Envelopes
from sinks.batch import envelope_lines
from sinks.insert_thread import InsertThread
from sinks.state_store import encode as encode_state
from wcs_analytics.engine_stats import EngineStats
from wcs_analytics.pipe_sender import PipeSender
from wcs_analytics.processing import child_main
from wcs_analytics.settings import Settings
from wcs_analytics.spool import OverflowSpool
from wcs_analytics.store import Database, Notify, notify_alerts, replay_spool

log = logging.getLogger(__name__)

MAX_UNACKED = 20_000  # envelopes sent to the processing process and not acknowledged


class ProcessStore(Database):
    """Owned by the runner's thread, like ``Store``; the receiver thread takes the answers."""

    def __init__(
        self,
        settings: Settings,
        notify: Notify | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        rules = load_rules(settings.alert_rules)  # a bad file stops the start here
        ctx = mp.get_context("fork")  # before the database is opened here: no chDB in it
        mine, theirs = ctx.Pipe()
        self._proc = ctx.Process(
            target=child_main,
            args=(settings, rules, theirs, mine),
            name="wcs-processing",
            daemon=True,
        )
        self._proc.start()
        theirs.close()
        self._conn = mine
        super().__init__(settings)
        self.notify, self.on_failure = notify, on_failure
        self.inserts = InsertThread(self.writer)
        self.failure: str | None = None
        self._cond = threading.Condition()
        self._since: list[Envelope] = []  # fed since the last flush request
        self._requested: list[Envelope] | None = None  # of the request not answered yet
        self._request: tuple[int, int] = (0, 0)  # its state version and wall ms
        self._requested_at = 0.0
        self._last_request = time.monotonic()
        self._unacked = 0
        self._rejected: list[tuple[Envelope, str]] = []
        self._clock: int | None = None
        self._changed = False
        self._stats = EngineStats()
        self._closing = False
        self._sender = PipeSender(mine, "processing-send", self._not_sent)
        self._restore()
        self._receiver = threading.Thread(
            target=self._receive, name="processing-receive", daemon=True
        )
        self._receiver.start()

    def _restore(self) -> None:
        meta, states = self.states.load()
        texts = [(skey, encode_state(state)) for skey, state in states]
        self._sender.put(("start", meta, texts, self.states.keys.dump()))
        if meta is not None:
            self._clock = meta["clock"]
        if meta is not None or states:
            log.info(
                "continuing the state stored in %s: %d open entities, clock %s",
                self.describe(),
                len(states),
                self._clock,
            )

    # ---- input (the runner's thread) -------------------------------------------------

    def feed(self, envelopes: Envelopes, bodies: Bodies = None, wall: int | None = None) -> None:
        """Send a batch to be processed (its ``events`` rows are built there, from the
        envelopes: ``bodies`` is not used)."""
        if not envelopes:
            return
        batch = list(envelopes)
        with self._cond:
            self._since += batch
            self._unacked += len(batch)
            failed = self.failure is not None
        if not failed:  # else kept for the spool only
            self._sender.put(("feed", batch, wall))

    def ready(self) -> bool:
        return self._unacked < MAX_UNACKED or self.failure is not None

    def advance(self, now_ms: int) -> None:
        if self.failure is None:
            self._sender.put(("advance", now_ms))

    @property
    def clock_ms(self) -> int | None:
        return self._clock

    def take_rejected(self) -> list[tuple[Envelope, str]]:
        with self._cond:
            rejected, self._rejected = self._rejected, []
        return rejected

    def replay_spool(self, spool: OverflowSpool) -> int:
        return replay_spool(self, spool)

    def due(self) -> bool:
        if self.failure is not None:
            return True
        pending = len(self._since)
        if pending >= self.settings.batch_rows:
            return True
        interval = time.monotonic() - self._last_request >= self.settings.batch_interval_ms / 1000
        return interval and (pending > 0 or self._changed)

    # ---- output ----------------------------------------------------------------------

    def flush(self, windows: bool = True, timeout: float | None = None) -> bool:
        """Ask for the rows of what changed, once the previous flush is written (waits up
        to ``timeout``; False: nothing asked, the envelopes stay pending)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if not self._cond.wait_for(self._answered, timeout) or self.failure is not None:
                return False
        if not self.inserts.wait(_left(deadline)):
            return False
        version, now = self.states.next_version()
        with self._cond:
            self._requested, self._since = self._since, []
            self._request = (version, now)
            self._requested_at = self._last_request = time.monotonic()
            self._changed = False
        self._sender.put(("flush", windows, version, now))
        return True

    def _answered(self) -> bool:
        return self._requested is None or self.failure is not None

    def finish(self, timeout: float | None = None) -> bool:
        """End of input: emit every changed window, write everything, wait for it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.flush(windows=True, timeout=timeout):
            return False
        with self._cond:
            if not self._cond.wait_for(self._answered, _left(deadline)):
                return False
            if self.failure is not None:
                return False
        return self.inserts.wait(_left(deadline))

    def stalled_s(self) -> float:
        """How long the flush in progress has been running: being processed or written."""
        if self.failure is not None:
            return float("inf")
        return max(self._waits())

    def stall_cause(self) -> str:
        """Which part ``stalled_s`` measures, for the log: the insert, or the processing
        process (behind its input, or gone)."""
        return stall_cause(self.failure is not None, *self._waits())

    def _waits(self) -> tuple[float, float]:
        """Seconds the insert in flight has run, and the flush asked for has waited."""
        insert = self.inserts.in_flight()[1]
        asked = time.monotonic() - self._requested_at if self._requested is not None else 0.0
        return insert, asked

    def unwritten(self) -> list[bytes]:
        """The envelopes fed and not known to be in the database, as spool lines (oldest
        first): the batch being written, the flush asked for, what was fed since."""
        with self._cond:
            fed = [*(self._requested or ()), *self._since]
        batch, _ = self.inserts.in_flight()
        lines = [] if batch is None else envelope_lines(batch.events)
        return lines + [encode(env) + b"\n" for env in fed]

    def stats(self) -> EngineStats:
        return self._stats

    @property
    def backlog(self) -> int:
        """Envelopes sent to the processing process and not processed yet."""
        return self._unacked

    @property
    def pending_rows(self) -> int:
        return len(self._since) + len(self._requested or ())

    # ---- answers (the receiver thread) -----------------------------------------------

    def _receive(self) -> None:
        try:
            while True:
                message = self._conn.recv()
                kind = message[0]
                if kind == "fed":
                    self._fed(*message[1:])
                elif kind == "lookup":
                    self._sender.put(("found", self.states.lookup_texts(message[1], True)))
                elif kind == "flushed":
                    self._flushed(*message[1:])
                elif kind == "error":
                    self._fail(f"the processing process failed:\n{message[1]}")
                    return
                else:
                    raise RuntimeError(f"the processing process sent {kind!r}")
        except (EOFError, OSError):
            if not self._closing:
                self._proc.join(timeout=5)
                self._fail(f"the processing process exited (exit code {self._proc.exitcode})")
        except Exception:
            self._fail(f"reading the processing answers failed:\n{traceback.format_exc()}")

    def _fed(
        self, count: int, rejected: list[tuple[Envelope, str]], clock: int | None, changed: bool
    ) -> None:
        with self._cond:
            self._unacked -= count
            self._rejected += rejected
            self._clock = clock
            self._changed = self._changed or changed

    def _flushed(
        self,
        rows: list[Row],
        events: list[list[Any]],
        states: list[dict[str, Any]],
        evicted: dict[Any, str],
        meta: dict[str, Any],
        stats: EngineStats,
    ) -> None:
        writer, store = self.writer, self.states
        writer.add(rows)
        writer.add_events_columns(events)
        store.track(states, evicted, filter_keys=False)  # the processing process filters
        state = [*states, *store.meta_rows(meta, *self._request)]
        writer.add_state(state)
        self._stats = stats
        notify_alerts(self.notify, rows)
        self.inserts.submit(writer.take(), lambda: store.written(state))
        with self._cond:
            self._requested = None
            self._cond.notify_all()

    def _not_sent(self, exc: BaseException) -> None:
        self._fail(f"sending to the processing process failed: {exc!r}")

    def _fail(self, text: str) -> None:
        log.error("%s", text)
        with self._cond:
            self.failure = text
            self._cond.notify_all()
        if self.on_failure is not None:
            self.on_failure()

    def close(self, timeout: float = 30.0) -> None:
        self._closing = True
        self._sender.put(("end",))
        self._sender.end()
        self._sender.thread.join(timeout=1)
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()
        self._conn.close()
        self._receiver.join(timeout=1)
        self.inserts.close(timeout=timeout)
        super().close()


def stall_cause(failed: bool, insert_s: float, asked_s: float) -> str:
    """The part that holds a flush up: ``insert_s`` the insert in flight has run,
    ``asked_s`` the flush asked of the processing process has waited for its answer."""
    if failed:
        return "the processing process (it failed)"
    if asked_s > insert_s:
        return "the processing process (behind its input: a flush is not answered)"
    return "the ClickHouse insert"


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())
