"""``wcs-analytics replay FILE.ndjson``: recorded envelopes through the same processors and sink.

Event time comes from the envelopes only (no wall clock), so a replay is
deterministic. At end of input: due timeouts fire, windows are emitted, every
row is written (open sessions as open), then it exits. Lines that are not valid
envelopes are reported with their line number and written to a rejects file;
the rest is still replayed. With ``--kafka`` the envelopes (their recorded
``received_at`` kept) are published to the family topics instead, for workers.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from events.envelope import Envelope, EnvelopeError, decode
from ingest.redact import envelope_redactor
from processors.embedded import EventClock, feed, finish
from wcs_analytics.alerting import Alerting
from wcs_analytics.settings import Settings
from wcs_analytics.store import Store

log = logging.getLogger(__name__)


@dataclass
class ReplayStats:
    lines: int = 0
    envelopes: int = 0
    rejected: int = 0
    rows_written: int = 0
    seconds: float = 0.0


class Progress:
    """A progress line on stderr every ``every_s`` seconds."""

    def __init__(self, total_bytes: int, out: TextIO = sys.stderr, every_s: float = 2.0) -> None:
        self.total, self.out, self.every_s = total_bytes, out, every_s
        self.start = self.last = time.monotonic()

    def update(self, done_bytes: int, envelopes: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        rate = envelopes / max(now - self.start, 1e-9)
        pct = 100.0 * done_bytes / self.total if self.total else 100.0
        print(
            f"replay: {envelopes} envelopes, {pct:5.1f}% of input, {rate:,.0f}/s",
            file=self.out,
            flush=True,
        )


def read_envelopes(
    path: Path, stats: ReplayStats, rejects: Path | None, redact_keys: Iterable[str] = ()
) -> Iterator[Envelope]:
    """Valid envelopes of an NDJSON file, in file order, redacted as ingest does (the file may
    be a raw capture); bad lines are logged and set aside."""
    redact = envelope_redactor(redact_keys)
    progress = Progress(path.stat().st_size)
    rejects_file: BinaryIO | None = None
    done = 0
    try:
        with path.open("rb") as handle:
            for stats.lines, line in enumerate(handle, 1):
                done += len(line)
                if not line.strip():
                    continue
                try:
                    envelope = redact(decode(line))
                except EnvelopeError as exc:
                    stats.rejected += 1
                    log.error("%s:%d: not replayed: %s", path, stats.lines, exc)
                    if rejects is not None:
                        rejects_file = rejects_file or rejects.open("ab")
                        rejects_file.write(line if line.endswith(b"\n") else line + b"\n")
                    continue
                stats.envelopes += 1
                yield envelope
                progress.update(done, stats.envelopes)
    finally:
        if rejects_file is not None:
            rejects_file.close()
    progress.update(done, stats.envelopes, force=True)


def replay(store: Store, path: Path, rejects: Path | None = None) -> ReplayStats:
    stats = ReplayStats()
    clock = EventClock(follow_wall=False)
    started = time.monotonic()
    alerting = Alerting.create(store.settings, store.writer, clock.now)  # docs/alerts.md
    sink = alerting.sink
    for envelope in read_envelopes(path, stats, rejects, store.settings.redact_keys):
        feed(store.pipeline, sink, clock, envelope)
        if sink.due():
            stats.rows_written += sink.flush()
    stats.rows_written += finish(store.pipeline, sink, clock)
    alerting.close()
    stats.seconds = time.monotonic() - started
    return stats


def replay_to_kafka(settings: Settings, path: Path, rejects: Path | None = None) -> ReplayStats:
    """Publish the file's envelopes to the family topics. Raises as publish_envelopes does."""
    from wcs_analytics.kafka_ingest import publish_envelopes

    stats = ReplayStats()
    started = time.monotonic()
    envelopes = read_envelopes(path, stats, rejects, settings.redact_keys)
    asyncio.run(publish_envelopes(settings, envelopes))
    stats.seconds = time.monotonic() - started
    return stats
