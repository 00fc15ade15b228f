"""What the service and ``replay`` share: the ClickHouse client, writer and pipeline state.

State (open sessions, timers, windows) is saved to ``<data_dir>/state.snapshot``
after rows are flushed (flush-then-checkpoint), so a restart continues open
calls and streams instead of starting them over.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from processors.embedded import EventClock, feed
from processors.pipeline import Pipeline
from sinks.client import connect
from sinks.migrations import migrate
from sinks.writer import ClickHouseWriter
from wcs_analytics.settings import Settings
from wcs_analytics.spool import OverflowSpool

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 30.0


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Store:
    def __init__(self, settings: Settings, restore_state: bool = True) -> None:
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
        self.snapshot_path: Path = settings.data_dir / "state.snapshot"
        config = settings.processor_config()
        self.pipeline = self._restore() if restore_state else Pipeline(config)
        self._last_checkpoint = time.monotonic()

    def describe(self) -> str:
        dsn = self.settings.dsn
        if "@" in dsn:  # never print credentials
            scheme, rest = dsn.split("://", 1)
            dsn = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return f"{dsn} database {self.settings.database}"

    def _restore(self) -> Pipeline:
        config = self.settings.processor_config()
        if self.snapshot_path.is_file():
            pipeline = Pipeline.restore(config, self.snapshot_path.read_bytes())
            log.info(
                "restored %d open entities from %s", pipeline.open_entities(), self.snapshot_path
            )
            return pipeline
        return Pipeline(config)

    def checkpoint(self) -> None:
        """Write the state snapshot atomically. Call only after rows were flushed."""
        tmp = self.snapshot_path.with_suffix(".tmp")
        tmp.write_bytes(self.pipeline.snapshot())
        os.replace(tmp, self.snapshot_path)
        self._last_checkpoint = time.monotonic()

    def maybe_checkpoint(self) -> None:
        if time.monotonic() - self._last_checkpoint >= CHECKPOINT_EVERY_S:
            self.checkpoint()

    def replay_spool(self, spool: OverflowSpool) -> int:
        """Feed envelopes spooled by an earlier run, then delete their files."""
        count = 0
        clock = EventClock(follow_wall=False)
        for path in spool.files():
            for envelope in spool.read(path):
                feed(self.pipeline, self.writer, clock, envelope)
                count += 1
                if self.writer.due():
                    self.writer.flush()
            self.writer.flush()
            self.checkpoint()
            path.unlink()
            log.info("replayed spooled envelopes from %s", path)
        return count

    def close(self) -> None:
        self.client.close()
