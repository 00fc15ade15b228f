"""``wcs-analytics simulate``: write an envelope NDJSON with ground truth, or POST to a service."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from ingest.config import IngestConfig
from ingest.redact import redact
from wcs_analytics.simulate import SimConfig, generate, post, truth_path, write_ndjson


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write envelopes here (+ FILE.truth.json)")
    target.add_argument(
        "--post", metavar="URL", help="POST hooks to a running service, e.g. http://127.0.0.1:8090"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the number of every kind of entity (default: %(default)s)",
    )
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="simulated time span (default: %(default)s)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="hooks/s when posting (default: as fast as --concurrency allows)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="post in simulated real time, compressed by this factor",
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="requests in flight (default: %(default)s)"
    )


def config(args: argparse.Namespace) -> SimConfig:
    base = SimConfig()

    def scaled(n: int) -> int:
        factor: float = args.scale
        return max(1, round(n * factor))

    return SimConfig(
        seed=args.seed,
        duration_ms=int(args.minutes * 60_000),
        connections=scaled(base.connections),
        calls=scaled(base.calls),
        publishers=scaled(base.publishers),
        viewers=scaled(base.viewers),
        messages=scaled(base.messages),
        data_ops=scaled(base.data_ops),
    )


class _Progress:
    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self.last >= 2.0:
            self.last = now
            print(f"simulate: {done}/{total} hooks posted", file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    try:
        trace = generate(config(args))
    except ValueError as exc:
        print(f"wcs-analytics simulate: {exc}", file=sys.stderr)
        return 2
    summary = trace.truth["summary"]
    if args.out is not None:
        keys = frozenset(k.lower() for k in IngestConfig().redact_keys)
        count = write_ndjson(trace, args.out, redact=lambda body: redact(body, keys))
        print(
            f"wrote {count} envelopes to {args.out} and the ground truth to "
            f"{truth_path(args.out)}; calls by disposition: {summary['dispositions']}"
        )
        return 0
    stats = asyncio.run(
        post(
            trace,
            args.post,
            rate=args.rate,
            concurrency=args.concurrency,
            speed=args.speed,
            progress=_Progress(),
        )
    )
    print(
        f"posted {stats.sent} hooks in {stats.elapsed_s:.1f}s: statuses {stats.statuses}, "
        f"errors {stats.errors}, latency ms {stats.latency_ms}"
    )
    return 0 if stats.ok == stats.sent else 1
