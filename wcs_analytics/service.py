"""``wcs-analytics run``: ingest + processors + sink in one process (the embedded default).

Shutdown (SIGTERM/SIGINT): stop accepting, answer in-flight hooks, drain the
bus, fire due timeouts, emit held windows, write every pending row, save the
open sessions, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

import uvicorn

from events.bus import InMemoryBus
from ingest.app import create_app
from ingest.drops import DropLog
from ingest.http_guard import HttpGuard
from processors.clock import EventClock
from processors.embedded import EmbeddedRunner
from sinks import freshness
from wcs_analytics import gc_tuning
from wcs_analytics.alerting import Alerting
from wcs_analytics.api import ReadAccess, mount
from wcs_analytics.cpus import cgroup_cpus, usable_cpus
from wcs_analytics.datadir import DataDirLock
from wcs_analytics.http_server import server_config
from wcs_analytics.process_store import ProcessStore
from wcs_analytics.read_side import read_side
from wcs_analytics.settings import Settings
from wcs_analytics.spool import OverflowSpool
from wcs_analytics.store import Notify, Store

log = logging.getLogger("wcs_analytics")


class _Server(uvicorn.Server):
    """uvicorn server whose signal handling stops serving but lets us flush afterwards.

    uvicorn re-raises captured signals after serve() returns, which would kill the
    process before the sink is flushed; we only ask it to exit.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _stop(self, sig: int) -> None:
        log.info("received %s: stopping intake, flushing", signal.Signals(sig).name)
        self.should_exit = True


STOP_MARGIN_S = 5.0  # of the shutdown bound, for stopping the server and closing files

SINK_COUNTERS = {  # ClickHouseWriter.stats key -> help text of wcs_sink_<key>_total
    "rows_written": "rows inserted into ClickHouse",
    "inserts": "INSERT statements sent to ClickHouse",
    "retries": "inserts retried after a transient error",
    "dead_lettered": "rows ClickHouse rejected for good, written to the dead letter",
}


def _gauge(name: str, help_text: str, value: float) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} gauge\n{name} {value}\n"


def _counter(name: str, help_text: str, value: float, labels: str = "") -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} counter\n{name}{labels} {value}\n"


def _by_reason(name: str, help_text: str, counts: Mapping[str, int]) -> str:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
    lines += [f'{name}{{reason="{reason}"}} {n}' for reason, n in sorted(counts.items())]
    return "\n".join(lines) + "\n"


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.alerting = Alerting.create(settings)  # FAILED-spike webhooks (docs/alerts.md)
        notify = self.alerting.webhook.send if self.alerting.webhook is not None else None
        self.server: _Server | None = None
        self.failed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.store = make_store(settings, notify, self._processing_failed)
        self.drops = DropLog()  # envelopes not kept: /metrics, /health, one log line per interval
        reject = settings.spool_full == "reject"
        self.spool = OverflowSpool(settings.data_dir / "spool", self.drops, reject)
        self.bus = InMemoryBus(settings.queue_size, self.spool.append)
        self.clock = EventClock(follow_wall=True)
        self.runner: EmbeddedRunner | None = None
        self.read_access = ReadAccess(settings.dsn, settings.database)
        self.guard = HttpGuard.start(settings.connection_limits())
        self.started = time.monotonic()

    def _processing_failed(self) -> None:
        """The processing process failed (its traceback is logged): stop, spooling what is
        not written; exit 1. Called from the thread that saw it."""
        self.failed = True
        server, loop = self.server, self._loop
        if server is not None and loop is not None:
            loop.call_soon_threadsafe(setattr, server, "should_exit", True)

    def metrics(self) -> str:
        runner, writer, stats = self.runner, self.store.writer, self.store.stats()
        parts = [
            _counter(
                "wcs_bus_overflow_total",
                "envelopes that found the bus full (then spooled, or not kept: "
                "wcs_envelopes_dropped_total / wcs_envelopes_rejected_total)",
                self.bus.overflowed,
            ),
            _counter(
                "wcs_overflow_spooled_total",
                "envelopes written to the overflow spool (replayed on the next start)",
                self.spool.written,
            ),
            _gauge(
                "wcs_processing_backlog",
                "envelopes handed to the processing process and not processed yet "
                "(0 with --processing inline)",
                self.store.backlog,
            ),
            _gauge("wcs_open_entities", "sessions open in memory", stats.open_entities),
            _gauge(
                "wcs_entities_in_memory",
                "sessions in memory, open or closed within closed_retention",
                stats.in_memory,
            ),
            _gauge(
                "wcs_stored_keys",
                "entity keys known to be in the state table (closed sessions a late event "
                "can still reach, for late_event_retention)",
                stats.stored_keys,
            ),
            _counter("wcs_state_lookups_total", "batched state-table lookups", stats.lookups),
            _counter(
                "wcs_late_dropped_total",
                "window hits later than the retention",
                stats.late_dropped,
            ),
            _counter("wcs_key_reuse_total", "keys that started a new session", stats.reused),
            _gauge(
                "wcs_sink_pending_rows",
                "rows (or envelopes being processed) waiting for the next ClickHouse insert",
                self.store.pending_rows,
            ),
            _counter(
                "wcs_insert_failures_total",
                "failed ClickHouse inserts (retried)",
                self.store.inserts.failures,
            ),
        ]
        parts.append(
            _by_reason(
                "wcs_rejected_total",
                "envelopes with an implausible received_at (not stored, not processed)",
                stats.rejected,
            )
        )
        parts.append(
            _by_reason(
                "wcs_skipped_total",
                "events stored but without a usable entity key (no session)",
                stats.skipped,
            )
        )
        if runner is not None:
            parts.append(_counter("wcs_processed_total", "envelopes processed", runner.processed))
            parts.append(
                _counter(
                    "wcs_store_stalls_total",
                    "times ClickHouse stalled and what was only in memory went to the spool",
                    runner.stalls,
                )
            )
        sink = writer.stats
        for key, help_text in SINK_COUNTERS.items():
            parts.append(_counter(f"wcs_sink_{key}_total", help_text, sink[key]))
        parts.append("\n".join(writer.freshness.render(freshness.NAME, freshness.HELP)) + "\n")
        parts.append(self.alerting.metrics(stats))
        parts.append(self.guard.metrics())
        return "".join(parts)

    def health(self) -> dict[str, Any]:
        now, event = self.clock.now(), self.store.clock_ms
        return {
            "queue_depth": self.bus.depth(),
            "event_clock_ms": now,
            "last_event_ms": event,
            "pending_rows": self.store.pending_rows,
            "uptime_s": round(time.monotonic() - self.started, 1),
        }

    async def serve(self) -> None:
        settings = self.settings
        replayed = await asyncio.to_thread(self.store.replay_spool, self.spool)
        if replayed:
            log.info("replayed %d spooled envelopes", replayed)
        self.runner = EmbeddedRunner(
            self.bus,
            self.store,
            self.clock,
            self.spool,
            stall_s=max(1.0, settings.batch_interval_ms / 1000),
            stop_timeout_s=max(1.0, settings.shutdown_timeout_ms / 1000 - STOP_MARGIN_S),
        )
        app = create_app(
            settings.ingest_config(),
            self.bus,
            extra_metrics=self.metrics,
            health=self.health,
            read_auth=read_side(settings),
            drops=self.drops,
        )
        mount(app, self.read_access, app.read_dependencies, settings.rates_dir)
        config = server_config(app, settings, self.guard)
        server = self.server = _Server(config)
        self._loop = asyncio.get_running_loop()
        if self.failed:  # before the server existed
            server.should_exit = True
        gc_tuning.tune()
        runner_task = asyncio.create_task(self.runner.run())
        log.info(
            "wcs-analytics listening on http://%s:%d/wcs/{method} -> %s",
            settings.host,
            settings.port,
            self.store.describe(),
        )
        try:
            await server.serve()
        finally:
            await self.bus.close()
            await runner_task
            self.alerting.close()
            self.spool.close()
            self.read_access.close()
            if self.failed:
                log.error("stopped: the processing process failed; what was not written is "
                          "in the spool for the next start")  # fmt: skip
            else:
                log.info("stopped: %d envelopes processed, all rows written",
                         self.runner.processed)  # fmt: skip


def run(settings: Settings) -> int:
    import uvloop

    lock = DataDirLock(settings.owner_dir) if settings.embedded else contextlib.nullcontext()
    with lock:
        service = Service(settings)
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(service.serve())
        finally:
            stuck = service.runner is not None and not service.runner.finished_in_time
            service.store.close(timeout=1.0 if stuck else 30.0)
    return 1 if service.failed else 0


def make_store(
    settings: Settings, notify: Notify | None, on_failure: Callable[[], None]
) -> Store | ProcessStore:
    """The engine ``run`` drives: the runtime in this process or in one of its own."""
    if processing_mode(settings.processing, usable_cpus(quota=cgroup_cpus())) == "process":
        return ProcessStore(settings, notify, on_failure)
    return Store(settings, notify)


def processing_mode(setting: str, cpus: int) -> str:
    """``--processing``: ``process`` or ``inline`` as given; ``auto``: a process of its own
    when there is a CPU for it beside the one answering hooks."""
    if setting == "auto":
        return "process" if cpus >= 2 else "inline"
    return setting
