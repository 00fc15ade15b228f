"""``wcs-analytics export billing|cdr|sdr``: write an export file from any of three sources.

* a stopped embedded database (``--data-dir``; takes the data-directory lock),
* a running ``run`` service (``--service http://host:port``; streams its ``/api/export``),
* a ClickHouse server (``--clickhouse http://...``).

All three produce the same bytes (``sinks.exports``). ``--out`` is written to a temporary
file and renamed when complete, so a failed export never leaves a partial file. Progress
(lines or bytes written) goes to stderr every 2 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, nullcontext
from pathlib import Path
from typing import BinaryIO

from sinks.exports import ExportSpec, export_chunks, make_spec
from sinks.exports.spec import FORMATS, KINDS
from wcs_analytics import settings as settings_mod
from wcs_analytics.datadir import DataDirBusy, DataDirLock
from wcs_analytics.settings import Settings, SettingsError

PROGRESS_EVERY_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--from", dest="start", required=True, help="ISO 8601 (UTC) or epoch ms")
    parser.add_argument("--to", dest="end", required=True, help="end of the period (exclusive)")
    parser.add_argument(
        "--group-by", default=None, help="billing: app_key,node_id,caller,sip_login,custom.<field>"
    )
    parser.add_argument("--rounding", default=None, help="billing/cdr A/B rule (default 60/6)")
    parser.add_argument(
        "--bill-failed-messages",
        action="store_true",
        help="billing: count messages whose SIP MESSAGE failed (4xx) as sent (default: not)",
    )
    formats = sorted({f for fs in FORMATS.values() for f in fs})
    parser.add_argument("--format", default=None, choices=formats, help="csv (default), ...")
    parser.add_argument("--out", type=Path, default=None, help="output file (default stdout)")
    parser.add_argument("--service", default=None, help="read from a running service's API")
    from wcs_analytics.rated_cli import add_arguments as rated_arguments  # --deck (rating.md)

    rated_arguments(parser)
    settings_mod.add_flags(parser, ("data_dir", "clickhouse", "database", "log_level"))


class Progress:
    """Counts what was written; reports on ``err`` at most every PROGRESS_EVERY_S seconds."""

    def __init__(self, binary: bool, err: BinaryIO | None, clock: Callable[[], float]) -> None:
        self.binary, self.err, self.clock = binary, err, clock
        self.lines = self.nbytes = 0
        self._next = clock() + PROGRESS_EVERY_S

    def add(self, chunk: bytes) -> None:
        self.nbytes += len(chunk)
        self.lines += chunk.count(b"\n")
        if self.clock() >= self._next:
            self._next = self.clock() + PROGRESS_EVERY_S
            self.report("written so far")

    def report(self, what: str) -> None:
        if self.err is not None:
            count = f"{self.nbytes} bytes" if self.binary else f"{self.lines} lines"
            self.err.write(f"export: {count} {what}\n".encode())
            self.err.flush()


def _service_chunks(url: str, kind: str, args: argparse.Namespace) -> Iterator[bytes]:
    import httpx

    params = {"from": args.start, "to": args.end, "group_by": args.group_by}
    params |= {"rounding": args.rounding, "format": args.format}
    if args.bill_failed_messages:
        params["bill_failed_messages"] = "true"
    query = {k: v for k, v in params.items() if v is not None}
    timeout = httpx.Timeout(30.0, read=None)
    with httpx.stream(
        "GET", f"{url.rstrip('/')}/api/export/{kind}", params=query, timeout=timeout
    ) as r:
        if r.status_code != 200:
            raise RuntimeError(f"service answered {r.status_code}: {r.read().decode()[:500]}")
        yield from r.iter_bytes()


def _database_chunks(settings: Settings, spec: ExportSpec) -> Iterator[bytes]:
    from sinks.client import connect

    client = connect(settings.dsn, settings.database)
    try:
        with closing(export_chunks(client, settings.database, spec)) as chunks:
            yield from chunks
    finally:
        client.close()


def write(chunks: Iterator[bytes], out: Path | None, progress: Progress) -> None:
    """Write every chunk to ``out`` (atomically: temp file then rename) or to stdout."""
    if out is None:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
            progress.add(chunk)
        sys.stdout.buffer.flush()
        return
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("wb") as file:
            for chunk in chunks:
                file.write(chunk)
                progress.add(chunk)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def main(args: argparse.Namespace) -> int:
    """Exit codes: 0 written, 1 export failed, 2 bad input, 3 data directory busy."""
    try:
        spec = make_spec(
            args.kind, args.start, args.end, args.group_by, args.rounding, args.format,
            args.bill_failed_messages,
        )  # fmt: skip
        settings = settings_mod.load(os.environ, args)
    except (ValueError, SettingsError) as exc:
        print(f"wcs-analytics export: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "deck", None):
        from wcs_analytics.rated_cli import main as rated_main

        return rated_main(args, spec, settings)
    progress = Progress(spec.fmt == "parquet", sys.stderr.buffer, time.monotonic)
    owner: AbstractContextManager[object] = nullcontext()
    if args.service:
        chunks = _service_chunks(args.service, spec.kind, args)
    else:
        chunks = _database_chunks(settings, spec)
        owner = DataDirLock(settings.owner_dir) if settings.embedded else owner
    try:
        with owner:
            write(chunks, args.out, progress)
    except DataDirBusy as exc:
        print(f"wcs-analytics export: {exc} (or use --service URL)", file=sys.stderr)
        return 3
    except Exception as exc:  # the driver's and httpx's errors: report, don't trace
        print(f"wcs-analytics export: failed: {exc}", file=sys.stderr)
        return 1
    progress.report(f"written{f' to {args.out}' if args.out else ''}")
    return 0


if __name__ == "__main__":  # also runnable as ``python -m wcs_analytics.export_cli``
    standalone = argparse.ArgumentParser(prog="wcs-analytics export")
    add_arguments(standalone)
    sys.exit(main(standalone.parse_args()))
