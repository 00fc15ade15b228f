"""``replay``'s progress line: where it is, the rate, and the time left when the size is known."""

from __future__ import annotations

import io

import pytest

from wcs_analytics.replay import Progress, duration_text


def progress(total: int) -> tuple[Progress, io.StringIO, list[float]]:
    now = [100.0]
    out = io.StringIO()
    return Progress(total, out, every_s=2.0, clock=lambda: now[0]), out, now


def test_a_known_size_gives_the_time_left_at_the_rate_so_far() -> None:
    line, out, now = progress(total=1_000_000)
    now[0] += 10.0
    line.update(250_000, 40_000)  # a quarter in 10 s: 30 s to go
    assert out.getvalue() == "replay: 40000 envelopes,  25.0% of input, 30s left, 4,000/s\n"


def test_updates_come_every_few_seconds_and_the_last_one_is_forced() -> None:
    line, out, now = progress(total=1_000)
    now[0] += 1.0
    line.update(100, 10)  # too soon: nothing
    now[0] += 1.0
    line.update(1_000, 20, force=True)  # done: no time left to show
    assert out.getvalue() == "replay: 20 envelopes, 100.0% of input, 10/s\n"


def test_a_pipe_shows_what_was_read() -> None:
    line, out, now = progress(total=0)
    now[0] += 4.0
    line.update(3_500_000, 8_000)
    assert out.getvalue() == "replay: 8000 envelopes, 3.5 MB read, 2,000/s\n"


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.4, "0s"), (42.4, "42s"), (185, "3m05s"), (7_620, "2h07m")]
)
def test_durations_read_at_a_glance(seconds: float, shown: str) -> None:
    assert duration_text(seconds) == shown
