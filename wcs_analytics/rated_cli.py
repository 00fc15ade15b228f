"""``wcs-analytics export billing|cdr --deck DIR``: a rated export, its manifest, and its
correction when the period was billed before with other results (docs/rating.md).

Local sources (``--data-dir``, ``--clickhouse``) rate here with the deck in ``DIR``;
``--service URL`` asks the running service to rate with its deck ``DIR`` (a name under
its ``--rates-dir``). Files: ``--out PATH``; the manifest goes to ``--manifest`` (default
``PATH.manifest.json``, else stderr); a correction to ``--correction`` (default
``PATH.correction.<format>``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import orjson

from sinks.exports import ExportSpec
from sinks.exports.manifest import manifest
from sinks.exports.rated import correction_chunks, rated_chunks, run_rated
from sinks.rating.load import DeckError, load_deck
from wcs_analytics.datadir import DataDirBusy, DataDirLock
from wcs_analytics.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deck", default=None, help="rate with this deck (docs/rating.md)")
    parser.add_argument("--manifest", type=Path, default=None, help="rated: manifest file")
    parser.add_argument("--correction", type=Path, default=None, help="rated: correction file")


def write(chunks: Iterator[bytes], out: Path | None) -> int:
    """Every chunk to ``out`` (temp file, then rename: never a partial file) or stdout;
    returns the bytes written."""
    written = 0
    if out is None:
        for chunk in chunks:
            written += sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return written
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("wb") as file:
            for chunk in chunks:
                written += file.write(chunk)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return written


def _fail(message: str, code: int) -> int:
    print(f"wcs-analytics export: {message}", file=sys.stderr)
    return code


def _paths(args: argparse.Namespace, fmt: str) -> tuple[Path | None, Path | None]:
    out: Path | None = args.out
    manifest_path = args.manifest or (out.with_name(out.name + ".manifest.json") if out else None)
    correction = args.correction or (out.with_name(f"{out.name}.correction.{fmt}") if out else None)
    return manifest_path, correction


def main(args: argparse.Namespace, spec: ExportSpec, settings: Settings) -> int:
    """Exit codes as ``export``: 0 ok, 1 failed, 2 bad input (deck problems), 3 busy."""
    if spec.kind not in ("billing", "cdr"):
        return _fail("--deck rates billing and cdr exports", 2)
    if args.rounding:
        return _fail("--rounding does not apply with --deck (the deck's increments do)", 2)
    if args.service:
        return _service(args, spec)
    try:
        deck = load_deck(Path(args.deck))
    except DeckError as exc:
        return _fail(str(exc), 2)
    owner: AbstractContextManager[object] = nullcontext()
    if settings.embedded:
        owner = DataDirLock(settings.owner_dir)
    try:
        with owner:
            return _local(args, spec, settings, deck)
    except DataDirBusy as exc:
        return _fail(f"{exc} (or use --service URL)", 3)
    except Exception as exc:  # the driver's errors: report, don't trace
        return _fail(f"failed: {exc}", 1)


def _local(args: argparse.Namespace, spec: ExportSpec, settings: Settings, deck: Any) -> int:
    from sinks.client import connect

    client = connect(settings.dsn, settings.database)
    try:
        run = run_rated(client, settings.database, spec, deck, int(time.time() * 1000))
        write(rated_chunks(client, settings.database, run.record, spec.fmt), args.out)
        summary = manifest(run, spec.fmt)
        correction = None
        if run.record.status == "correction":
            correction = correction_chunks(client, settings.database, run.record, spec.fmt)
        return _finish(args, spec, summary, correction)
    finally:
        client.close()


def _finish(args: argparse.Namespace, spec: ExportSpec, summary: dict[str, Any],
            correction: Iterator[bytes] | None) -> int:  # fmt: skip
    manifest_path, correction_path = _paths(args, spec.fmt)
    text = orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n"
    if manifest_path is None:
        sys.stderr.buffer.write(text)
    else:
        write(iter([text]), manifest_path)
    line = f"export {summary['export_id']}: {summary['status']}"
    if correction is not None:
        if correction_path is None:
            line += " (a correction: use --out or --correction PATH to write it)"
        else:
            write(correction, correction_path)
            line += f", correction written to {correction_path}"
    print(f"wcs-analytics export: {line}", file=sys.stderr)
    return 0


def _service(args: argparse.Namespace, spec: ExportSpec) -> int:
    import httpx

    base = args.service.rstrip("/")
    params = {"from": args.start, "to": args.end, "deck": args.deck, "format": spec.fmt}
    params |= {"group_by": args.group_by} if args.group_by else {}
    timeout = httpx.Timeout(30.0, read=None)
    try:
        with httpx.Client(timeout=timeout) as http:
            answer = http.post(f"{base}/api/export/{spec.kind}/rated", params=params)
            if answer.status_code != 200:
                return _fail(f"service answered {answer.status_code}: {answer.text[:2000]}", 1)
            write(iter([answer.content]), args.out)
            export_id = answer.headers["x-export-id"]
            summary = http.get(f"{base}/api/export-runs/{export_id}/manifest").json()
            correction = None
            if summary["status"] == "correction":
                url = f"{base}/api/export-runs/{export_id}/correction"
                correction = iter([http.get(url, params={"format": spec.fmt}).content])
            return _finish(args, spec, summary | {"format": spec.fmt}, correction)
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return _fail(f"failed: {exc}", 1)
