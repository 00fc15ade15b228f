"""WCS SDR lines (sinks/exports/sdr.py), hand-written expected lines."""

from __future__ import annotations

import pytest

from sinks.exports.sdr import StreamRecord, format_duration, format_start, sdr_line

T0 = 1_447_230_973_000  # 2015-11-11 08:36:13 UTC


def record(**changes: object) -> StreamRecord:
    base: dict[str, object] = {
        "start_ms": T0,
        "media_provider": "Flash",
        "name": "stream-Bob",
        "media_session_id": "5c2d75c0-8886-11e5-9f07-95ac8a1f8b4e",
        "duration_ms": 48_999,
        "final_status": "UNPUBLISHED",
        "info": "",
        "publish": True,
        "subscribers": 3,
    }
    return StreamRecord(**(base | changes))  # type: ignore[arg-type]


def test_the_wcs_documentation_example() -> None:
    assert sdr_line(record()) == (
        "2015-11-11 08:36:13;Flash;stream-Bob;5c2d75c0-8886-11e5-9f07-95ac8a1f8b4e;"
        "00:00:48;UNPUBLISHED;;PUBLISH;3;\n"
    )


def test_subscribe_lines_have_zero_subscribers() -> None:
    line = sdr_line(record(final_status="STOPPED", publish=False, subscribers=7))
    assert line.endswith(";00:00:48;STOPPED;;SUBSCRIBE;0;\n")


def test_failed_keeps_its_info_and_timeout_closes_are_failed() -> None:
    failed = sdr_line(record(final_status="FAILED", info="Failed by RTP activity"))
    assert ";FAILED;Failed by RTP activity;PUBLISH;3;" in failed
    timed_out = sdr_line(record(final_status="", info=""))
    assert ";FAILED;closed by timeout;PUBLISH;3;" in timed_out


def test_separators_and_line_breaks_never_leak_into_fields() -> None:
    line = sdr_line(record(name="a;b", info="x\r\ny\nz;"))
    assert line.count(";") == 9
    assert line.count("\n") == 1
    assert ";a,b;" in line
    assert ";x y z,;" in line


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (T0, "2015-11-11 08:36:13"),
        (T0 + 999, "2015-11-11 08:36:13"),  # milliseconds dropped, never rounded up
        (0, "1970-01-01 00:00:00"),
        (1_767_225_599_999, "2025-12-31 23:59:59"),
    ],
)
def test_start_is_utc_to_the_second(ms: int, expected: str) -> None:
    assert format_start(ms) == expected


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0, "00:00:00"),
        (999, "00:00:00"),
        (1000, "00:00:01"),
        (59_999, "00:00:59"),
        (60_000, "00:01:00"),
        (3_599_000, "00:59:59"),
        (3_600_000, "01:00:00"),
        (94_387_000, "26:13:07"),  # longer than a day: hours keep counting
        (-5, "00:00:00"),
    ],
)
def test_duration(ms: int, expected: str) -> None:
    assert format_duration(ms) == expected
