"""bench/report.py: wrk parsing, medians, Markdown tables and ratio lines on hand-written runs."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:  # bench/ holds scripts, not a package
    sys.path.insert(0, str(BENCH))

from report import (  # noqa: E402 -- needs the sys.path entry above
    Run,
    median_ratio,
    medians,
    medians_table,
    parse_wrk,
    ratio_line,
    runs_table,
    stats_cells,
    wrk_requests,
)

# `wrk -t1 -c8 -d1s --latency -s post.lua` against the bare echo of bench/ingest_bench.py
WRK_CLEAN = """\
Running 1s test @ http://127.0.0.1:46897/wcs/X
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   339.48us  207.48us   3.71ms   90.88%
    Req/Sec    24.56k     2.22k   26.30k    90.00%
  Latency Distribution
     50%  277.00us
     75%  321.00us
     90%  538.00us
     99%    1.14ms
  24438 requests in 1.00s, 21.79MB read
Requests/sec:  24429.91
Transfer/sec:     21.78MB
"""

# the same shape from an overloaded target: seconds in the tail, socket errors, non-2xx
WRK_ERRORS = """\
Running 5s test @ http://127.0.0.1:41234/wcs/
  1 threads and 128 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    48.21ms   90.12ms   1.98s    97.10%
    Req/Sec     3.01k   412.55     3.70k    72.00%
  Latency Distribution
     50%   21.50ms
     75%   40.02ms
     90%   88.70ms
     99%    1.50s
  15012 requests in 5.01s, 12.80MB read
  Socket errors: connect 0, read 2, write 0, timeout 5
  Non-2xx or 3xx responses: 7
Requests/sec:   2996.41
Transfer/sec:      2.55MB
"""

RUNS = [
    Run("bare echo", 1, 30_000.4, 0.90, 3.50, 0),
    Run("run", 1, 9_000.0, 3.00, 20.00, 2),
    Run("bare echo", 2, 28_000.0, 1.10, 4.00, 0),
    Run("run", 2, 12_000.6, 2.00, 15.00, 0),
    Run("bare echo", 3, 31_000.0, 1.00, 3.00, 1),
    Run("run", 3, 10_000.0, 2.50, 30.00, 0),
]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (WRK_CLEAN, Run("echo", 1, 24429.91, 0.277, 1.14, 0)),
        (WRK_ERRORS, Run("echo", 1, 2996.41, 21.5, 1500.0, 14)),
    ],
    ids=["clean", "errors"],
)
def test_parse_wrk(output: str, expected: Run) -> None:
    run = parse_wrk(output, "echo", 1)
    assert run.target == expected.target and run.index == expected.index
    assert run.rps == pytest.approx(expected.rps)
    assert run.p50_ms == pytest.approx(expected.p50_ms)
    assert run.p99_ms == pytest.approx(expected.p99_ms)
    assert run.errors == expected.errors


@pytest.mark.parametrize(
    "output",
    [WRK_CLEAN.replace("Requests/sec:", "Req:"), WRK_CLEAN.replace("     99%", "     98%"), ""],
    ids=["no-rps", "no-p99", "empty"],
)
def test_parse_wrk_rejects_incomplete_output(output: str) -> None:
    with pytest.raises(SystemExit, match="cannot parse wrk output"):
        parse_wrk(output, "echo", 1)


def test_parse_wrk_rejects_unknown_latency_unit() -> None:
    with pytest.raises(SystemExit, match="cannot parse wrk latency"):
        parse_wrk(WRK_CLEAN.replace("277.00us", "277.00ns"), "echo", 1)


@pytest.mark.parametrize(
    ("output", "expected"), [(WRK_CLEAN, 24438), (WRK_ERRORS, 15012), ("wrk: timeout", 0)]
)
def test_wrk_requests(output: str, expected: int) -> None:
    assert wrk_requests(output) == expected


def test_medians_take_only_the_target_runs() -> None:
    assert medians(RUNS, "bare echo") == (30_000.4, 1.00, 3.50)
    assert medians(RUNS, "run") == (10_000.0, 2.50, 20.00)


def test_medians_of_an_even_count_average_the_middle_pair() -> None:
    assert medians(RUNS[:4], "run") == pytest.approx((10_500.3, 2.50, 17.50))


def test_medians_of_an_unknown_target_raise() -> None:
    with pytest.raises(statistics.StatisticsError):
        medians(RUNS, "ingest")


def test_median_ratio_divides_median_rps() -> None:
    assert median_ratio(RUNS, "run", "bare echo") == pytest.approx(10_000.0 / 30_000.4)


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ((24429.91, 0.277, 1.14), "24,430 | 0.28 | 1.14"),
        ((1_000_000.0, 0.004, 1500.0), "1,000,000 | 0.00 | 1500.00"),
        ((999.49, 10.125, 0.0), "999 | 10.12 | 0.00"),
    ],
)
def test_stats_cells_format(cells: tuple[float, float, float], expected: str) -> None:
    assert stats_cells(*cells) == expected


def test_runs_table_keeps_run_order() -> None:
    assert runs_table(RUNS[:2]) == [
        "| run | target | req/s | p50 ms | p99 ms | errors |",
        "|---:|---|---:|---:|---:|---:|",
        "| 1 | bare echo | 30,000 | 0.90 | 3.50 | 0 |",
        "| 1 | run | 9,000 | 3.00 | 20.00 | 2 |",
    ]


def test_medians_table_rows_follow_the_targets_order() -> None:
    assert medians_table(RUNS, ("run", "bare echo")) == [
        "| target | median req/s | median p50 ms | median p99 ms |",
        "|---|---:|---:|---:|",
        "| run | 10,000 | 2.50 | 20.00 |",
        "| bare echo | 30,000 | 1.00 | 3.50 |",
    ]


def test_ratio_line() -> None:
    ratio = median_ratio(RUNS, "run", "bare echo")
    assert ratio_line("run", "bare echo", ratio) == "**run / bare echo (median req/s): 0.33x**"


def test_one_hook_of_the_mix_is_its_distinct_bodies_in_order() -> None:
    from run_mix import MIX, MixRequests, lua_mix, only

    assert only(None) is MIX
    keepalive = only("StreamKeepAliveEvent")
    assert len(keepalive) == 1 and keepalive[0][0] == "StreamKeepAliveEvent"  # 2 in the mix
    assert [m for m, _ in only("CallStatusEvent")] == ["CallStatusEvent"] * 4
    with pytest.raises(ValueError, match="not in the mix"):
        only("nosuchHook")
    script = lua_mix("t", 3, "StreamKeepAliveEvent")
    assert script.count('{"StreamKeepAliveEvent"') == 1 and '"connect"' not in script
    requests = MixRequests("t", 3, "h:1", "StreamKeepAliveEvent")
    assert all(requests(i).startswith(b"POST /wcs/StreamKeepAliveEvent ") for i in range(7))
    assert b"pub-t-0-1" in requests(1) and b"pub-t-0-0" in requests(6)  # one key per slot
    calls = MixRequests("t", 3, "h:1", "CallStatusEvent")
    assert b"call-t-0-2" in calls(11) and b"call-t-1-0" in calls(12)  # 4 statuses, next call
    assert "local rounds = 0 " in script
    assert "local rounds = slots * steps " in lua_mix("t", 3, "CallStatusEvent")


def test_busy_share_and_settle_bounds() -> None:
    from machine import busy_share, cpu_times, settle

    assert busy_share(100, 1000, 150, 1100) == 0.5
    assert busy_share(100, 1000, 100, 1000) == 0.0  # no time passed: not busy
    busy, total = cpu_times()
    assert 0 <= busy <= total and total > 0  # Linux: /proc/stat is there
    assert settle(max_busy=1.0, window_s=0.01, timeout_s=5) < 1  # always quiet enough
    waited = settle(max_busy=-1.0, window_s=0.01, timeout_s=0.05)  # never quiet: gives up
    assert 0.05 <= waited < 1
