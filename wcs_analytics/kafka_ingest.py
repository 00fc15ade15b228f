"""``wcs-analytics ingest --kafka HOST:PORT`` and ``replay FILE --kafka``: envelopes into Kafka.

``serve_ingest`` runs the ingest app (the same hook code as ``run``) on a
``KafkaBus``: topics ensured on start, hooks answered after the broker's ack
(``--ack broker``) or once queued (``--ack buffer``), a disk spool under
``<data_dir>/kafka-spool`` when Kafka is slow or down. SIGTERM/SIGINT: stop
accepting, answer in-flight hooks, flush the producer (what it cannot deliver
goes to the spool), close the spool, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, TextIO

from events.envelope import Envelope
from events.topics import input_topics
from ingest.app import create_app
from ingest.http_guard import HttpGuard
from ingest.kafka_batch import Batch, Batcher, BatchLimits
from ingest.kafka_bus import KafkaBus
from ingest.kafka_link import ProducerLink
from ingest.kafka_record import KafkaBusConfig, batch_record, outgoing
from ingest.spool import DiskSpool
from wcs_analytics.datadir import DataDirLock
from wcs_analytics.http_server import server_config
from wcs_analytics.read_side import read_side
from wcs_analytics.service import _Server
from wcs_analytics.settings import Settings, SettingsError
from wcs_analytics.topics import TopicsError, ensure_topics

log = logging.getLogger("wcs_analytics")

MAX_IN_FLIGHT = 20_000  # replay: unacknowledged envelopes before waiting for the oldest record


def _link(settings: Settings, client_id: str) -> ProducerLink:
    if settings.kafka is None:
        raise SettingsError("--kafka / WCS_KAFKA: Kafka bootstrap servers are required here")
    bootstrap, topics = settings.kafka, input_topics(settings.topic_prefix)

    async def prepare() -> list[str]:
        return await ensure_topics(
            bootstrap,
            topics,
            partitions=settings.topic_partitions,
            replication=settings.topic_replication,
            create=settings.create_topics,
        )

    return ProducerLink(bootstrap, topics, prepare=prepare, client_id=client_id)


def batch_limits(settings: Settings) -> BatchLimits:
    return BatchLimits(
        linger_s=settings.kafka_batch_linger_ms / 1000,
        max_envelopes=settings.kafka_batch_max_envelopes,
        max_bytes=settings.kafka_batch_max_bytes,
    )


def build_bus(settings: Settings) -> KafkaBus:
    """The Kafka bus of ``settings`` (not started)."""
    config = KafkaBusConfig(
        topic_prefix=settings.topic_prefix,
        ack_buffer=settings.ack == "buffer",
        hook_budget_ms=settings.hook_budget_ms,
        reject_when_full=settings.spool_full == "reject",
        batch=batch_limits(settings),
    )
    spool = DiskSpool(settings.data_dir / "kafka-spool", settings.spool_max_bytes)
    return KafkaBus(_link(settings, "wcs-analytics-ingest"), spool, config)


async def serve(settings: Settings) -> None:
    bus = build_bus(settings)
    await bus.start()

    def health() -> dict[str, Any]:
        return {"kafka_mode": bus.router.mode, "spool_bytes": bus.spool.bytes_used}

    guard = HttpGuard.start(settings.connection_limits())
    app = create_app(
        settings.ingest_config(),
        bus,
        extra_metrics=lambda: bus.metrics() + guard.metrics(),
        health=health,
        read_auth=read_side(settings),
        drops=bus.drops,
    )
    config = server_config(app, settings, guard)
    log.info(
        "wcs-analytics ingest on http://%s:%d/wcs/{method} -> Kafka %s topics %s<family> (ack=%s)",
        settings.host,
        settings.port,
        settings.kafka,
        settings.topic_prefix,
        settings.ack,
    )
    try:
        await _Server(config).serve()
    finally:
        await bus.close()


def serve_ingest(settings: Settings) -> int:
    """Run the ingest service until SIGTERM/SIGINT; 0 after a clean stop, 1 when topics fail."""
    import uvloop

    _link(settings, "check")  # --kafka is required: fail before taking the lock
    with DataDirLock(settings.data_dir / "kafka-spool"):
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(serve(settings))
        except TopicsError as exc:
            print(f"wcs-analytics ingest: {exc}", file=sys.stderr)
            return 1
    return 0


async def publish_envelopes(
    settings: Settings, envelopes: Iterable[Envelope], progress: TextIO = sys.stderr
) -> int:
    """Publish recorded envelopes (``received_at`` kept) to the family topics; the count.

    Packed into batch records like ingest does (``--kafka-batch-*``), in file order
    per partition. Topics are ensured first; waits for every ack (flush) before
    returning. Raises TopicsError, ConnectionError (Kafka unreachable) or
    RuntimeError when records were not acknowledged.
    """
    link = _link(settings, "wcs-analytics-replay")
    if not await link.connect():
        raise ConnectionError(f"Kafka at {settings.kafka} is not reachable")
    loop = asyncio.get_running_loop()
    batcher: Batcher[None] = Batcher(batch_limits(settings))
    sent = _Sent()
    count = 0
    started = last = time.monotonic()
    try:
        for envelope in envelopes:
            item = outgoing(settings.topic_prefix, envelope)
            partition = link.partition(item.topic, item.key)
            for batch in batcher.add(
                item.topic, partition, item.key, item.value, None, loop.time()
            ):
                await sent.send(link, batch)
            for batch in batcher.due(loop.time()):
                await sent.send(link, batch)
            count += 1
            if time.monotonic() - last >= 2.0:
                last = time.monotonic()
                rate = count / (last - started)
                print(f"replay --kafka: {count} envelopes sent, {rate:,.0f}/s", file=progress)
        for batch in batcher.drain():
            await sent.send(link, batch)
        await sent.settle(0)
    finally:
        await link.close(30.0)
    print(f"replay --kafka: {count} envelopes published in {sent.records} records", file=progress)
    if sent.failed:
        raise RuntimeError(f"{sent.failed} of {count} envelopes were not acknowledged by Kafka")
    return count


class _Sent:
    """Records in flight (bounded by ``MAX_IN_FLIGHT`` envelopes) and the failed count."""

    def __init__(self) -> None:
        self.pending: deque[tuple[asyncio.Future[Any], int]] = deque()
        self.in_flight = self.records = self.failed = 0

    async def send(self, link: ProducerLink, batch: Batch[None]) -> None:
        self.pending.append((await link.send(batch_record(batch)), len(batch.values)))
        self.records += 1
        self.in_flight += len(batch.values)
        await self.settle(MAX_IN_FLIGHT)

    async def settle(self, limit: int) -> None:
        """Wait for the oldest records until at most ``limit`` envelopes are in flight."""
        while self.pending and (self.in_flight > limit or self.pending[0][0].done()):
            future, envelopes = self.pending.popleft()
            self.in_flight -= envelopes
            try:
                await future
            except Exception as exc:
                log.error("Kafka did not acknowledge a record of %d envelopes: %r", envelopes, exc)
                self.failed += envelopes


def main(argv: list[str] | None = None) -> int:
    """``python -m wcs_analytics.kafka_ingest [--flags]``: ``ingest`` without the CLI."""
    import argparse
    import os

    from wcs_analytics import settings as settings_mod

    parser = argparse.ArgumentParser(prog="wcs-analytics ingest")
    settings_mod.add_flags(parser)
    try:
        settings = settings_mod.load(os.environ, parser.parse_args(argv))
        _link(settings, "check")
    except SettingsError as exc:
        print(f"wcs-analytics: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return serve_ingest(settings)


if __name__ == "__main__":
    sys.exit(main())
