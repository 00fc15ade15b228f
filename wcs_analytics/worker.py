"""``wcs-analytics worker --kafka HOST:PORT --clickhouse DSN``: the Faust worker (processors.app).

``run_worker(settings)`` is what the CLI calls; ``python -m wcs_analytics.worker``
accepts every setting flag; ``--worker-clock events`` is for replayed recordings (event
time from the envelopes only, no wall advance).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from processors.app import create_app, follows_wall
from wcs_analytics.settings import Settings, SettingsError, add_flags, load

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, follow_wall: bool | None = None) -> int:
    """Run one worker until SIGTERM/SIGINT (flush-then-commit on the way out); exit code."""
    if not settings.kafka:
        print("wcs-analytics worker: --kafka / WCS_KAFKA is required", file=sys.stderr)
        return 2
    wall = follows_wall(settings) if follow_wall is None else follow_wall
    app = create_app(settings, follow_wall=wall)
    app.finalize()
    worker = app.Worker(loglevel=settings.log_level.upper(), quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wcs-analytics worker", description=__doc__)
    add_flags(parser)
    args = parser.parse_args(argv)
    try:
        settings = load(os.environ, args)
    except SettingsError as exc:
        print(f"wcs-analytics worker: {exc}", file=sys.stderr)
        return 2
    return run_worker(settings)


if __name__ == "__main__":
    sys.exit(main())
