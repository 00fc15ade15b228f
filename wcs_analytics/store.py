"""The embedded engine ``run``, ``replay`` and spool replay share: one partition runtime over
one database, its state store, the batching writer and its insert thread.

Per batch of envelopes: look up the stored states of keys not in memory (closed sessions
evicted earlier), feed the runtime, queue the ``events`` rows. Per flush: render the
changed rows, serialise the changed states, hand both to the insert thread (rows first,
then state: flush, then checkpoint). The state lives in the database itself
(``sinks.state_store``), so a restart, a replay in parts or a replay into another
database each continue exactly the state that belongs to that database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from events.envelope import Envelope
from events.tables import Row
from processors.alert_rules import load_rules
from processors.alert_stage import AlertStage
from processors.clock import wall_ms
from processors.embedded import Bodies, Engine, Envelopes
from processors.families import family
from processors.runtime import PartitionRuntime
from sinks.batch import envelope_lines
from sinks.client import connect
from sinks.insert_thread import InsertThread
from sinks.migrations import migrate
from sinks.state_store import StateStore
from sinks.writer import ClickHouseWriter
from wcs_analytics.engine_stats import EngineStats, engine_stats
from wcs_analytics.settings import Settings
from wcs_analytics.spool import OverflowSpool

log = logging.getLogger(__name__)

PART = "embedded"  # the one partition of the embedded path
SPOOL_CHUNK = 2000
Notify = Callable[[list[dict[str, Any]]], None]


class Database:
    """The embedded path's side of the database: a client, the schema migrated, the batching
    writer and the state store (with its own client for lookups)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.client = connect(settings.dsn, settings.database)
        applied = migrate(self.client, settings.database, cluster=settings.clickhouse_cluster)
        if applied:
            log.info("applied migrations %s to %s", applied, self.describe())
        self.writer = ClickHouseWriter(
            self.client,
            settings.database,
            max_rows=settings.batch_rows,
            max_interval_ms=settings.batch_interval_ms,
            now_ms=wall_ms,
            dead_letter=settings.data_dir / "dead-letter.ndjson",
        )
        self._lookup_client = connect(settings.dsn, settings.database)
        self.states = StateStore(self._lookup_client, settings.database, PART, wall_ms)

    def describe(self) -> str:
        dsn = self.settings.dsn
        if "@" in dsn:  # never print credentials
            scheme, rest = dsn.split("://", 1)
            dsn = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return f"{dsn} database {self.settings.database}"

    def close(self) -> None:
        self._lookup_client.close()
        self.client.close()


class Store(Database):
    """Owned by one thread (the runner's); inserts happen in the insert thread."""

    def __init__(self, settings: Settings, notify: Notify | None = None) -> None:
        super().__init__(settings)
        self.stage = AlertStage(load_rules(settings.alert_rules))
        self.runtime = PartitionRuntime(settings.processor_config(), self.stage, persistent=True)
        self._restore()
        self.inserts = InsertThread(self.writer)
        self.notify = notify
        self.rejected: list[tuple[Envelope, str]] = []  # the caller reports and clears them

    def _restore(self) -> None:
        meta, states = self.states.load()
        if meta is not None:
            self.runtime.load_meta(meta)
        self.runtime.adopt(states)
        if meta is not None or states:
            log.info(
                "continuing the state stored in %s: %d open entities, clock %s",
                self.describe(),
                self.runtime.open_entities(),
                self.runtime.clock,
            )

    # ---- input -----------------------------------------------------------------------

    def feed(self, envelopes: Envelopes, bodies: Bodies = None, wall: int | None = None) -> None:
        """Process a batch and queue its ``events`` rows; implausible envelopes go to
        ``rejected`` instead (not stored, not processed)."""
        keys = self.runtime.keys_of(envelopes)
        unknown = self.runtime.unknown_keys(envelopes, keys)
        if unknown:
            self.runtime.adopt(self.states.lookup(unknown))
        rejected = self.runtime.feed(envelopes, wall, keys)
        if rejected:
            skip = {index for index, _ in rejected}
            self.rejected += [(envelopes[i], reason) for i, reason in rejected]
            kept = [i for i in range(len(envelopes)) if i not in skip]
            envelopes = [envelopes[i] for i in kept]
            bodies = None if bodies is None else [bodies[i] for i in kept]
        self.writer.add_events(envelopes, bodies)

    def advance(self, now_ms: int) -> None:
        self.runtime.advance(now_ms)

    @property
    def clock_ms(self) -> int | None:
        return self.runtime.clock

    def replay_spool(self, spool: OverflowSpool) -> int:
        return replay_spool(self, spool)

    def take_rejected(self) -> list[tuple[Envelope, str]]:
        """The envelopes rejected since the last call (for the caller to report)."""
        rejected, self.rejected = self.rejected, []
        return rejected

    def ready(self) -> bool:
        """Whether to feed more now (always: feeding runs in the caller's thread)."""
        return True

    def stats(self) -> EngineStats:
        states = self.states
        return engine_stats(self.runtime, len(states.keys), states.lookups)

    @property
    def pending_rows(self) -> int:
        return self.writer.pending

    @property
    def backlog(self) -> int:
        """Envelopes fed and not processed yet: none, feeding processes them."""
        return 0

    def due(self) -> bool:
        """Rows pending long or many enough, or state changed without input (timeouts, the
        windows of a quiet minute) and the flush interval passed."""
        writer = self.writer
        return writer.due() or (self.runtime.changed and writer.interval_passed(writer.last_take))

    # ---- output ----------------------------------------------------------------------

    def flush(self, windows: bool = True, timeout: float | None = None) -> bool:
        """Render what changed, checkpoint, hand it to the insert thread. Waits while the
        previous flush is still being written (up to ``timeout``; False: nothing handed
        over, the rows stay pending)."""
        if not self.inserts.wait(timeout):
            return False
        rows = self.runtime.flush(windows)
        self.writer.add(rows)
        notify_alerts(self.notify, rows)
        checkpoint = self.runtime.begin_checkpoint()
        state_rows = self.states.rows_for(checkpoint, is_open)
        self.writer.add_state(state_rows)
        batch = self.writer.take()
        self.inserts.submit(batch, lambda: self.states.written(state_rows))
        return True

    def stalled_s(self) -> float:
        """How long the insert in flight has been running (0 when none is)."""
        return self.inserts.in_flight()[1]

    def stall_cause(self) -> str:
        """What ``stalled_s`` measures, for the log."""
        return "the ClickHouse insert"

    def unwritten(self) -> list[bytes]:
        """The envelopes fed but not known to be in the database: the batch being written and
        the one being collected, as spool lines (oldest first)."""
        batch, _ = self.inserts.in_flight()
        lines = [] if batch is None else envelope_lines(batch.events)
        return lines + envelope_lines(self.writer.pending_events())

    def finish(self, timeout: float | None = None) -> bool:
        """End of input: emit every changed window, write everything, wait for it."""
        if not self.flush(windows=True, timeout=timeout):
            return False
        return self.inserts.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        self.inserts.close(timeout=timeout)
        super().close()


def replay_spool(engine: Engine, spool: OverflowSpool) -> int:
    """Feed envelopes spooled by an earlier run, write them, then delete their files."""
    count = 0
    for path in spool.files():
        batch: list[Envelope] = []
        for envelope in spool.read(path):
            batch.append(envelope)
            if len(batch) >= SPOOL_CHUNK:
                count += _feed_spooled(engine, batch)
                batch = []
        count += _feed_spooled(engine, batch)
        written = engine.finish()
        for envelope, reason in engine.take_rejected():  # the last ones come with the finish
            log.error("spooled envelope %r not replayed: %s", envelope["id"], reason)
        if not written:  # the processing process failed: the service is stopping
            log.error("the envelopes spooled in %s were not written: the file stays", path)
            return count
        path.unlink()
        log.info("replayed spooled envelopes from %s", path)
    return count


def _feed_spooled(engine: Engine, batch: list[Envelope]) -> int:
    engine.feed(batch)
    for envelope, reason in engine.take_rejected():
        log.error("spooled envelope %r not replayed: %s", envelope["id"], reason)
    if engine.due():
        engine.flush(windows=False)
    return len(batch)


def notify_alerts(notify: Notify | None, rows: list[Row]) -> None:
    """Hand the alert rows of a flush to the webhook sender (when there is one)."""
    if notify is None:
        return
    fired = [values for table, values in rows if table == "alerts"]
    if fired:
        notify(fired)


def is_open(key: tuple[str, str], state: Any) -> bool:
    return family(key[0]).is_open(state)
