"""Shared reporting for the wrk benchmarks: parse ``wrk --latency``, medians, Markdown tables.

Pure functions on :class:`Run` values (no IO), except :func:`publish`, which prints a
finished report and saves it. Numbers are formatted the way bench/README.md shows them:
req/s with thousands separators and no decimals, latencies in ms with two decimals.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    """One measured wrk run: ``target`` label, 1-based ``index``, req/s, p50/p99 in ms, errors."""

    target: str
    index: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_SOCKET_ERRORS = r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise SystemExit(f"cannot parse wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str, target: str, index: int) -> Run:
    """req/s, p50, p99 and errors (non-2xx/3xx + socket errors) from ``wrk --latency`` output.

    Raises SystemExit with the output when req/s or a percentile is missing (a bench script
    cannot go on without them).
    """
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if rps is None or p50 is None or p99 is None:
        raise SystemExit(f"cannot parse wrk output:\n{output}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(_SOCKET_ERRORS, output)
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    return Run(target, index, float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), errors)


def wrk_requests(output: str) -> int:
    """The answers wrk counted (``N requests in ...``); 0 when the line is missing."""
    match = re.search(r"(\d+) requests in", output)
    return int(match.group(1)) if match else 0


def medians(runs: Iterable[Run], target: str) -> tuple[float, float, float]:
    """Median (req/s, p50 ms, p99 ms) of ``target``'s runs; StatisticsError when it has none."""
    mine = [r for r in runs if r.target == target]
    return (
        statistics.median(r.rps for r in mine),
        statistics.median(r.p50_ms for r in mine),
        statistics.median(r.p99_ms for r in mine),
    )


def median_ratio(runs: Sequence[Run], target: str, baseline: str) -> float:
    """Median req/s of ``target`` divided by that of ``baseline``."""
    return medians(runs, target)[0] / medians(runs, baseline)[0]


def stats_cells(rps: float, p50_ms: float, p99_ms: float) -> str:
    """The ``req/s | p50 | p99`` cells of a table row, without the outer pipes."""
    return f"{rps:,.0f} | {p50_ms:.2f} | {p99_ms:.2f}"


def runs_table(runs: Iterable[Run]) -> list[str]:
    """Markdown lines: header, separator and one row per run, in the given order."""
    return [
        "| run | target | req/s | p50 ms | p99 ms | errors |",
        "|---:|---|---:|---:|---:|---:|",
        *(
            f"| {r.index} | {r.target} | {stats_cells(r.rps, r.p50_ms, r.p99_ms)} | {r.errors} |"
            for r in runs
        ),
    ]


def medians_table(runs: Sequence[Run], targets: Iterable[str]) -> list[str]:
    """Markdown lines: header, separator and one row of medians per target, in that order."""
    return [
        "| target | median req/s | median p50 ms | median p99 ms |",
        "|---|---:|---:|---:|",
        *(f"| {target} | {stats_cells(*medians(runs, target))} |" for target in targets),
    ]


def ratio_line(target: str, baseline: str, ratio: float) -> str:
    """The bold summary line for ``target`` / ``baseline`` median req/s."""
    return f"**{target} / {baseline} (median req/s): {ratio:.2f}x**"


def publish(text: str, output: Path) -> None:
    """Print the report to stdout and write it to ``output`` (creating its directory)."""
    print(text)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
