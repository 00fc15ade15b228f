"""The connection table: header/body deadlines, shedding oldest idle/slow first, busy exempt."""

from __future__ import annotations

import pytest

from ingest.connections import ConnectionLimits, ConnectionTable

LIMITS = ConnectionLimits(max_connections=5, reserve=2, header_timeout_s=10, body_timeout_s=20)


def table() -> ConnectionTable[str]:
    return ConnectionTable(LIMITS)


def test_header_deadline_counts_from_connect_and_from_each_answer() -> None:
    t = table()
    assert t.opened("a", 0) == [] and t.opened("b", 5) == []
    assert t.expired(9.9) == []
    assert t.expired(10) == [("a", "header_timeout")]
    t.reading_body("b", 6)
    t.busy("b")
    assert t.expired(1000) == []  # a request being answered never times out here
    t.waiting_headers("b", 1000)  # answered, kept alive
    assert t.expired(1009) == [] and t.expired(1010) == [("b", "header_timeout")]
    assert t.closed_by["header_timeout"] == 2 and len(t) == 0


def test_body_deadline() -> None:
    t = table()
    t.opened("a", 0)
    t.reading_body("a", 3)
    assert t.expired(22.9) == [] and t.expired(23) == [("a", "body_timeout")]


def test_above_cap_minus_reserve_the_oldest_waiting_are_shed() -> None:
    t = table()
    for n, name in enumerate("abc"):
        assert t.opened(name, n) == []
    t.reading_body("a", 3)  # a slow body, since 3: now younger than b and c
    assert t.opened("d", 4) == [("b", "shed")]
    assert t.opened("e", 5) == [("c", "shed")]
    assert t.opened("f", 6) == [("a", "shed")]
    assert len(t) == 3 and t.closed_by["shed"] == 3


def test_busy_connections_are_never_shed_and_the_cap_refuses_the_newcomer() -> None:
    t = table()
    for n, name in enumerate("abcde"):
        t.opened(name, n)
        t.busy(name)
    assert len(t) == 5
    assert t.opened("f", 10) == [("f", "refused")]  # nothing to shed, cap reached
    t.closed("a")
    assert t.opened("g", 11) == []  # within the cap again (the reserve is for busy ones)
    assert t.opened("h", 12) == [("g", "shed")]  # the older waiting one makes room


def test_newcomer_survives_a_flood_of_slow_connections() -> None:
    t = table()
    for n in range(100):
        t.opened(f"slow-{n}", n)
    t.opened("wcs", 100)
    t.reading_body("wcs", 100.001)
    t.busy("wcs")
    for n in range(100, 200):
        t.opened(f"slow-{n}", n + 1)
    assert len(t) == 3  # max - reserve
    assert t.closed_by["shed"] == 98 + 100
    t.waiting_headers("wcs", 300)
    assert t.expired(305) == [(f"slow-{n}", "header_timeout") for n in (198, 199)]


def test_events_for_forgotten_connections_are_ignored() -> None:
    t = table()
    t.opened("a", 0)
    assert t.expired(10) == [("a", "header_timeout")]
    t.busy("a")  # the protocol reports late: no resurrection
    t.waiting_headers("a", 11)
    t.closed("a")
    assert len(t) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_connections": 5, "reserve": 5}, {"reserve": -1}, {"header_timeout_s": 0}],
)
def test_bad_limits(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ConnectionLimits(**kwargs)  # type: ignore[arg-type]
