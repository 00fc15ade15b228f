"""The ``wcs-analytics`` command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from wcs_analytics import settings as settings_mod
from wcs_analytics.cpus import (
    AUTO_MAX_JOBS,
    MAX_JOBS,
    auto_jobs,
    cgroup_cpus,
    parse_jobs,
    usable_cpus,
)
from wcs_analytics.datadir import DataDirBusy
from wcs_analytics.settings import Settings, SettingsError

if TYPE_CHECKING:
    from wcs_analytics.replay import ReplayStats

STORE_SETTINGS = (
    "data_dir",
    "clickhouse",
    "database",
    "log_level",
    "batch_rows",
    "batch_interval_ms",
    "keepalive_interval_ms",
    "call_setup_timeout_ms",
    "call_idle_timeout_ms",
    "stream_idle_timeout_ms",
    "connection_idle_timeout_ms",
)


KAFKA_SETTINGS = (
    "kafka",
    "topic_prefix",
    "topic_partitions",
    "topic_replication",
    "create_topics",
)
BATCH_SETTINGS = ("kafka_batch_linger_ms", "kafka_batch_max_envelopes", "kafka_batch_max_bytes")
INGEST_SETTINGS = (
    "host",
    "port",
    "data_dir",
    "log_level",
    "max_body_bytes",
    "redact_keys",
    "hmac_secret",
    "basic_user",
    "basic_password",
    "read_token",
    "read_user",
    "read_password",
    "read_open",
    "rest_client_config",
    "ack",
    "hook_budget_ms",
    "spool_max_bytes",
    "spool_full",
    *KAFKA_SETTINGS,
    *BATCH_SETTINGS,
)
WORKER_SETTINGS = (
    *STORE_SETTINGS,
    "clickhouse_cluster",
    "consumer_group",
    "worker_clock",
    "kafka_alerts",
    "alert_rules",
    "alert_webhook_url",
    "alert_webhook_format",
    *KAFKA_SETTINGS,
    "kafka_linger_ms",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wcs-analytics",
        description="Real-time analytics for Flashphoner WCS REST hooks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="ingest + processing + ClickHouse sink in one process")
    settings_mod.add_flags(run)

    ingest = sub.add_parser("ingest", help="HTTP hooks -> Kafka topics (stateless replicas)")
    settings_mod.add_flags(ingest, INGEST_SETTINGS)

    worker = sub.add_parser("worker", help="Kafka -> processors (Faust) -> ClickHouse")
    settings_mod.add_flags(worker, WORKER_SETTINGS)

    replay = sub.add_parser("replay", help="feed envelope NDJSON files through the processors")
    replay.add_argument(
        "files",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="NDJSON of envelopes, plain or gzip; /dev/stdin. Several files (the logs of "
        "several nodes) are merged by received_at, each file's order kept",
    )
    replay.add_argument(
        "--rejects",
        type=Path,
        default=None,
        help="append the lines not replayed (not envelopes, implausible times) to this file",
    )
    replay.add_argument(
        "--jobs",
        default="auto",
        metavar="N",
        help="process in N part processes, one owning the database: the same tables, state "
        "and rejects; faster with free cores. auto: the usable CPUs (affinity, cgroup quota), "
        f"at most {AUTO_MAX_JOBS}; 1 with --kafka (default: %(default)s)",
    )
    settings_mod.add_flags(
        replay, (*STORE_SETTINGS, *KAFKA_SETTINGS, *BATCH_SETTINGS, "redact_keys")
    )

    migrate = sub.add_parser("migrate", help="create or upgrade the ClickHouse schema")
    settings_mod.add_flags(
        migrate, ("data_dir", "clickhouse", "database", "clickhouse_cluster", "log_level")
    )

    query = sub.add_parser(
        "query", help="run one SQL query (embedded: while the service is stopped)"
    )
    query.add_argument("sql")
    query.add_argument(
        "--format", choices=("tsv", "jsonl"), default="tsv", help="output (default: %(default)s)"
    )
    settings_mod.add_flags(query, ("data_dir", "clickhouse", "database", "log_level"))

    export = sub.add_parser("export", help="billing, CDR and SDR exports")
    from wcs_analytics.export_cli import add_arguments as export_arguments

    export_arguments(export)

    dash = sub.add_parser("dashboard", help="serve /dashboard and the read API next to ClickHouse")
    from wcs_analytics.dashboard_cli import add_arguments as dashboard_arguments

    dashboard_arguments(dash)

    sim = sub.add_parser("simulate", help="generate realistic WCS hook traffic")
    from wcs_analytics.simulate_cli import add_arguments

    add_arguments(sim)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return settings_mod.load(os.environ, args)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _owner(settings: Settings) -> AbstractContextManager[object]:
    """Embedded data has one owner process: take the data directory lock."""
    from wcs_analytics.datadir import DataDirLock

    if settings.embedded:
        return DataDirLock(settings.owner_dir)
    return contextlib.nullcontext()


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.client import connect
    from sinks.migrations import migrate

    client = connect(settings.dsn, settings.database)
    try:
        applied = migrate(client, settings.database, cluster=settings.clickhouse_cluster)
    finally:
        client.close()
    print(f"migrations applied: {applied or 'none (up to date)'}")
    return 0


# open files a replay needs besides its input files (the database engine, pipes, logs)
MERGE_FD_RESERVE = 256
QUERY_FORMATS = {"tsv": "TabSeparatedWithNames", "jsonl": "JSONEachRow"}
# the engine formats the values itself: a time Python cannot represent (a far-future
# created_at) prints as text instead of failing in a conversion
QUERY_SETTINGS = {"output_format_json_quote_64bit_integers": 0}


def _query(settings: Settings, args: argparse.Namespace) -> int:
    """1 with one line on stderr when the database refuses the query (no traceback)."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from sinks.client import connect
    from sinks.errors import SinkError

    try:
        client = connect(settings.dsn, settings.database)
    except SinkError as exc:
        print(f"wcs-analytics query: {one_line(exc)}", file=sys.stderr)
        return 1
    try:
        try:
            out = client.raw_query(
                args.sql, fmt=QUERY_FORMATS[args.format], settings=QUERY_SETTINGS
            )
        except ClickHouseError as exc:
            print(f"wcs-analytics query: {one_line(exc)}", file=sys.stderr)
            return 1
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
    finally:
        client.close()
    return 0


def one_line(exc: BaseException) -> str:
    """An error message on one line (ClickHouse's carry the query and newlines)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.errors import SinkError
    from wcs_analytics.replay import replay
    from wcs_analytics.store import Store

    files: list[Path] = args.files
    for file in files:
        if not file.exists() or file.is_dir():
            why = "is a directory" if file.is_dir() else "no such file"
            print(f"wcs-analytics replay: {file}: {why}", file=sys.stderr)
            return 2
    named = [file.resolve() for file in files]
    twice = next((file for file, real in zip(files, named, strict=True)
                  if named.count(real) > 1), None)  # fmt: skip
    if twice is not None:
        print(f"wcs-analytics replay: {twice} is given twice: its envelopes would be counted "
              "twice", file=sys.stderr)  # fmt: skip
        return 2
    if len(files) > 1:
        from ingest.http_guard import raise_fd_limit

        limit = raise_fd_limit()  # every process reading the input holds all its files open
        if len(files) + MERGE_FD_RESERVE > limit:
            print(f"wcs-analytics replay: {len(files)} files cannot be merged at once under "
                  f"the open-files limit of {limit}; replay them in groups of at most "
                  f"{max(1, limit - MERGE_FD_RESERVE)}, the groups in time order",
                  file=sys.stderr)  # fmt: skip
            return 2
    irregular = next((file for file in files if not file.is_file()), None)
    regular = irregular is None  # else a pipe (/dev/stdin): read once, by one process
    try:
        requested = parse_jobs(args.jobs)
    except ValueError as exc:
        print(f"wcs-analytics replay: {exc}", file=sys.stderr)
        return 2
    if settings.kafka:
        from wcs_analytics.replay import replay_to_kafka

        if requested not in (None, 1):
            print("wcs-analytics replay: --jobs is for replay into ClickHouse, not --kafka",
                  file=sys.stderr)  # fmt: skip
            return 2

        try:
            stats = replay_to_kafka(settings, files, args.rejects)
        except (ConnectionError, RuntimeError) as exc:  # TopicsError is a RuntimeError
            print(f"wcs-analytics replay: {exc}", file=sys.stderr)
            return 1
        print(
            f"published {stats.envelopes} envelopes ({stats.rejected} rejected lines) in "
            f"{stats.seconds:.1f}s to {settings.kafka} topics {settings.topic_prefix}<family>"
        )
        return _replay_status(stats)
    if requested is not None and not 1 <= requested <= MAX_JOBS:
        print(f"wcs-analytics replay: --jobs must be 1 to {MAX_JOBS}", file=sys.stderr)
        return 2
    if requested is None:
        jobs = auto_jobs(usable_cpus(quota=cgroup_cpus())) if regular else 1
    elif requested != 1 and not regular:
        print(f"wcs-analytics replay: --jobs {requested} needs a regular file (every part "
              f"reads it), not {irregular}", file=sys.stderr)  # fmt: skip
        return 2
    else:
        jobs = requested
    if jobs != 1:
        from wcs_analytics.replay_jobs import PartFailed, replay_jobs

        try:
            stats, where = replay_jobs(settings, files, jobs, args.rejects)
        except (PartFailed, SinkError) as exc:
            print(f"wcs-analytics replay: {one_line(exc)}", file=sys.stderr)
            return 1
    else:
        try:
            store = Store(settings)
        except SinkError as exc:  # the database cannot be reached or used
            print(f"wcs-analytics replay: {one_line(exc)}", file=sys.stderr)
            return 1
        try:
            stats = replay(store, files, args.rejects)
        finally:
            store.close()
        where = store.describe()
    print(
        f"replayed {stats.envelopes} envelopes ({stats.rejected} rejected lines) in "
        f"{stats.seconds:.2f}s, {stats.rows_written} rows written to {where}"
        + (f" by {jobs} part processes" if jobs > 1 else "")
    )
    if stats.late_dropped:
        print(
            f"{stats.late_dropped} window hits were older than the window retention and not "
            "counted (replay the parts of a log in time order)"
        )
    return _replay_status(stats)


def _replay_status(stats: ReplayStats) -> int:
    """1 when lines were rejected or the input could not be read to its end."""
    if stats.unreadable:
        print(f"wcs-analytics replay: {stats.unreadable}; the lines before it were replayed",
              file=sys.stderr)  # fmt: skip
    return 1 if stats.rejected or stats.unreadable else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "export":  # takes the data-dir lock itself, only when it reads one
            from wcs_analytics.export_cli import main as export_main

            return export_main(args)
        if args.command == "dashboard":
            from wcs_analytics.dashboard_cli import main as dashboard_main

            return dashboard_main(args)
        if args.command == "simulate":
            from wcs_analytics.simulate_cli import main as simulate_main

            return simulate_main(args)
        settings = _settings(args)
        _logging(settings.log_level)
        if args.command == "run":
            from wcs_analytics.service import run

            return run(settings)
        if args.command == "ingest":  # locks its own spool directory
            from wcs_analytics.kafka_ingest import serve_ingest

            return serve_ingest(settings)
        if args.command == "worker":
            from wcs_analytics.worker import run_worker

            return run_worker(settings)
        if args.command == "replay" and settings.kafka:
            return _replay(settings, args)
        commands = {"migrate": _migrate, "replay": _replay, "query": _query}
        with _owner(settings):
            return commands[args.command](settings, args)
    except SettingsError as exc:
        print(f"wcs-analytics: configuration error: {exc}", file=sys.stderr)
        return 2
    except DataDirBusy as exc:
        print(f"wcs-analytics: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
