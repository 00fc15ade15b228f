"""Writer policy with an in-memory fake client: batching, rows as given (state rows last),
retry and dead-letter decisions. The insert thread (the backpressure) is in
test_insert_thread.py, the real engine in tests/integration."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from events.catalog import resolve
from events.envelope import Envelope, make
from events.tables import EVENTS, TABLES
from sinks.errors import (
    Backpressure,
    ConfigError,
    PermanentError,
    TransientError,
    classify,
    translated,
)
from sinks.writer import ClickHouseWriter, RetryPolicy

BAD = "<bad>"  # a value the fake client rejects like a type error


class FakeClient:
    """Records inserts; ``failures`` are raised by the next calls, rows holding BAD are rejected."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.inserts: list[dict[str, Any]] = []
        self.calls = 0
        self.failures = list(failures or [])

    def insert(
        self,
        table: str,
        data: list[list[Any]],
        column_names: tuple[str, ...],
        database: str,
        column_type_names: tuple[str, ...],
        column_oriented: bool,
    ) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        assert column_oriented
        assert len(data) == len(column_names) == len(column_type_names)
        data = [list(row) for row in zip(*data, strict=True)]
        if any(BAD in row for row in data):
            raise ValueError("invalid literal for int() with base 10: '<bad>'")
        self.inserts.append(
            {"table": table, "data": data, "columns": column_names, "database": database}
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


class MemoryDeadLetter:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, dict[str, Any]]] = []

    def write(self, table: str, reason: str, rows: Iterable[dict[str, Any]]) -> int:
        rows = list(rows)
        self.entries += [(table, reason, row) for row in rows]
        return len(rows)


def call(call_id: str = "c1", version: int = 1, **overrides: Any) -> tuple[str, dict[str, Any]]:
    values: dict[str, Any] = {}
    for name, kind in TABLES["calls"].columns:
        values[name] = (
            None if kind.startswith("Nullable") else
            False if kind == "Bool" else
            0 if "Int" in kind or "DateTime" in kind else ""
        )  # fmt: skip
    values |= {"call_id": call_id, "version": version, "created_at": 5, **overrides}
    return "calls", values


def gap(session: str, start: int, version: int, deleted: int = 0) -> tuple[str, dict[str, Any]]:
    return "keepalive_gaps", {
        "media_session_id": session, "node_id": "n", "app_key": "a", "name": "s",
        "gap_start": start, "gap_end": start + 10, "gap_ms": 10, "is_deleted": deleted,
        "version": version,
    }  # fmt: skip


def state_row(family: str, key: str) -> dict[str, Any]:
    return {"family": family, "key": key, "part": "p", "open": 1, "last_event_at": 1,
            "written_at": 2, "state": "{}", "version": 3}  # fmt: skip


def envelope(envelope_id: str) -> Envelope:
    return make(resolve("hangup"), {"callId": "c1", "nodeId": "n1"}, 7, envelope_id)


def writer(
    client: FakeClient | None = None,
    clock: Clock | None = None,
    sleeps: list[float] | None = None,
    **kwargs: Any,
) -> ClickHouseWriter:
    sleep = sleeps.append if sleeps is not None else lambda _: None
    return ClickHouseWriter(
        client or FakeClient(), "wcs", now_ms=clock or Clock(), sleep=sleep, **kwargs
    )


def written(client: FakeClient, table: str) -> list[list[Any]]:
    return [row for i in client.inserts if i["table"] == table for row in i["data"]]


# batching --------------------------------------------------------------------


def test_due_when_max_rows_pending() -> None:
    w = writer(max_rows=3)
    w.add([call("a"), call("b")])
    assert not w.due()
    w.add([call("c")])
    assert w.due()


def test_due_after_max_interval_since_first_pending_row() -> None:
    clock = Clock()
    w = writer(clock=clock, max_interval_ms=1000)
    assert not w.due()  # nothing pending never becomes due
    clock.now += 5000
    w.add([call("a")])
    clock.now += 999
    w.add([call("b")])  # a later row does not restart the clock
    assert not w.due()
    clock.now += 1
    assert w.due()
    w.flush()
    assert not w.due()


def test_flush_on_demand_one_insert_per_table_in_column_order() -> None:
    client = FakeClient()
    w = writer(client)
    w.add([call("a"), gap("m", 1, 1), call("b")])
    w.add_envelope(envelope("e1"))
    assert w.flush() == 4
    assert [i["table"] for i in client.inserts] == ["events", "calls", "keepalive_gaps"]
    for insert in client.inserts:
        assert insert["columns"] == TABLES[insert["table"]].column_names
        assert insert["database"] == "wcs"
    names = TABLES["calls"].column_names
    assert [row[names.index("call_id")] for row in written(client, "calls")] == ["a", "b"]
    assert w.pending == 0
    assert w.flush() == 0
    assert client.calls == 3


def test_add_envelope_makes_an_events_row() -> None:
    client = FakeClient()
    w = writer(client)
    w.add_envelope(envelope("e1"))
    w.flush()
    (row,) = written(client, "events")
    values = dict(zip(TABLES["events"].column_names, row, strict=True))
    assert values["id"] == "e1"
    assert values["app_key"] == values["session_id"] == ""
    assert values["body"] == '{"callId":"c1","nodeId":"n1"}'


# rows as given: one batch, few large inserts -----------------------------------


def test_rows_are_written_as_given_without_coalescing() -> None:
    """The runtime renders each entity once per flush; re-emits across flushes collapse in
    ClickHouse (ReplacingMergeTree), so the writer keeps every row in order."""
    client = FakeClient()
    w = writer(client)
    w.add([call("a", 1, status="s1"), call("b", 1), call("a", 2, status="s2")])
    assert w.pending == 3
    assert w.flush() == 3
    names = TABLES["calls"].column_names
    got = [(r[names.index("call_id")], r[names.index("status")]) for r in written(client, "calls")]
    assert got == [("a", "s1"), ("b", ""), ("a", "s2")]


def test_events_bodies_given_as_text_are_written_verbatim() -> None:
    client = FakeClient()
    w = writer(client)
    w.add_events([envelope("e1"), envelope("e2")], ['{"raw": 1}', None])
    w.flush()
    body = TABLES["events"].column_names.index("body")
    assert [row[body] for row in written(client, "events")] == [
        '{"raw": 1}',
        '{"callId":"c1","nodeId":"n1"}',
    ]


def test_state_rows_are_written_last_and_do_not_start_the_interval() -> None:
    clock = Clock()
    client = FakeClient()
    w = writer(client, clock=clock, max_interval_ms=1000)
    w.add_state([state_row("call", "c1")])
    clock.now += 5000
    assert not w.due()  # state alone never makes a flush due
    w.add([call("a")])
    w.add_envelope(envelope("e1"))
    assert w.flush() == 3
    assert [i["table"] for i in client.inserts] == ["events", "calls", "entity_state"]


def test_rows_of_an_unknown_table_are_refused() -> None:
    w = writer()
    with pytest.raises(ValueError, match="unknown table"):
        w.add([call("a"), ("nope", {})])
    assert w.pending == 0  # nothing of the call was added either


def test_events_rows_go_into_the_events_columns() -> None:
    client = FakeClient()
    w = writer(client)
    with pytest.raises(ValueError, match="events row needs"):
        w.add([("events", {"id": "x"})])
    values = ["e1", 1_767_225_600_000, "call", "call", "k", "", "", "", "{}"]
    row = dict(zip(EVENTS.column_names, values, strict=True))
    w.add([("events", row)])
    assert w.flush() == 1 and [i["table"] for i in client.inserts] == ["events"]


def test_row_missing_a_column_is_dead_lettered_at_write() -> None:
    client = FakeClient()
    dead = MemoryDeadLetter()
    w = writer(client, dead_letter=dead)
    broken = {k: v for k, v in call("b")[1].items() if k != "custom"}
    w.add([call("a"), ("calls", broken), call("c")])
    assert w.flush() == 2
    assert [(t, row["call_id"]) for t, _, row in dead.entries] == [("calls", "b")]
    assert "without column 'custom'" in dead.entries[0][1]


def test_take_hands_the_batch_over_and_starts_a_new_one() -> None:
    clock = Clock()
    w = writer(clock=clock, max_interval_ms=1000)
    w.add([call("a")])
    batch = w.take()
    assert (len(batch), w.pending) == (1, 0)
    clock.now += 5000
    assert not w.due()  # the interval restarts with the next row
    w.add([call("b")])
    assert w.write(batch) == 1 and len(batch) == 0
    assert w.pending == 1


# retry -----------------------------------------------------------------------


def test_transient_errors_are_retried_with_exponential_backoff() -> None:
    client = FakeClient([OperationalError("connection reset"), DatabaseError("x", code=252)])
    sleeps: list[float] = []
    w = writer(client, sleeps=sleeps, retry=RetryPolicy(max_attempts=3, base_delay_s=0.5))
    w.add([call("a")])
    assert w.flush() == 1
    assert sleeps == [0.5, 1.0]
    assert client.calls == 3
    assert w.stats["retries"] == 2
    assert w.stats["inserts"] == 1


def test_retry_delay_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1, multiplier=3, max_delay_s=5)
    assert [policy.delay_s(n) for n in (1, 2, 3, 4)] == [1, 3, 5, 5]


def test_exhausted_retries_raise_and_keep_rows_pending() -> None:
    failures: list[Exception] = [OperationalError("down")] * 3
    client = FakeClient(failures)
    sleeps: list[float] = []
    w = writer(client, sleeps=sleeps, retry=RetryPolicy(max_attempts=3, base_delay_s=0.1))
    w.add([gap("m", 1, 1), call("a")])
    with pytest.raises(TransientError, match="down"):
        w.flush()
    assert client.calls == 3
    assert len(sleeps) == 2
    assert w.pending == 2
    assert w.flush() == 2  # the server is back
    assert w.pending == 0


def test_tables_written_before_a_failure_leave_the_buffer() -> None:
    client = FakeClient()
    w = writer(client, retry=RetryPolicy(max_attempts=1))
    w.add([call("a"), gap("m", 1, 1)])
    original = client.insert

    def fail_on_gaps(table: str, *args: Any, **kwargs: Any) -> None:
        if table == "keepalive_gaps":
            raise OperationalError("timeout")
        original(table, *args, **kwargs)

    client.insert = fail_on_gaps  # type: ignore[method-assign]
    with pytest.raises(TransientError):
        w.flush()
    assert w.pending == 1
    assert w.stats["rows_written_by_table"] == {"calls": 1}


def test_a_failed_write_leaves_what_is_not_written_and_newer_rows_follow_it() -> None:
    client = FakeClient()
    w = writer(client, retry=RetryPolicy(max_attempts=1))
    w.add([call("a"), gap("m", 1, 1)])
    w.add_state([state_row("call", "a")])
    original = client.insert
    failing = {"keepalive_gaps"}

    def fail_on(table: str, *args: Any, **kwargs: Any) -> None:
        if table in failing:
            raise OperationalError("timeout")
        original(table, *args, **kwargs)

    client.insert = fail_on  # type: ignore[method-assign]
    with pytest.raises(TransientError):
        w.flush()
    assert [i["table"] for i in client.inserts] == ["calls"]  # state not before its rows
    w.add([gap("m", 2, 2)])
    w.add_state([state_row("call", "b")])
    failing.clear()
    assert w.flush() == 4
    assert [i["table"] for i in client.inserts] == ["calls", "keepalive_gaps", "entity_state"]
    starts = TABLES["keepalive_gaps"].column_names.index("gap_start")
    assert [r[starts] for r in written(client, "keepalive_gaps")] == [1, 2]
    key = TABLES["entity_state"].column_names.index("key")
    assert [r[key] for r in written(client, "entity_state")] == ["a", "b"]


@pytest.mark.parametrize("code", [60, 81, 516])
def test_config_errors_are_not_retried_and_keep_rows(code: int) -> None:
    client = FakeClient([DatabaseError("missing", code=code)])
    w = writer(client, dead_letter=MemoryDeadLetter())
    w.add([call("a")])
    with pytest.raises(ConfigError):
        w.flush()
    assert client.calls == 1
    assert w.pending == 1


# permanent errors and the dead letter ----------------------------------------


def test_bad_rows_are_isolated_and_dead_lettered() -> None:
    client = FakeClient()
    dead = MemoryDeadLetter()
    w = writer(client, dead_letter=dead)
    rows = [call(f"c{i}", custom=BAD if i in (3, 11) else "") for i in range(16)]
    w.add(rows)
    assert w.flush() == 14
    assert [(t, row["call_id"]) for t, _, row in dead.entries] == [
        ("calls", "c3"),
        ("calls", "c11"),
    ]
    assert all("ValueError" in reason for _, reason, _ in dead.entries)
    assert len(written(client, "calls")) == 14
    assert w.stats["dead_lettered"] == 2
    assert w.stats["dead_lettered_by_table"] == {"calls": 2}
    assert w.pending == 0


def test_isolation_budget_bounds_the_inserts() -> None:
    client = FakeClient()
    dead = MemoryDeadLetter()
    w = writer(client, dead_letter=dead, max_isolation_inserts=4)
    w.add([call(f"c{i}", custom=BAD) for i in range(64)])
    assert w.flush() == 0
    assert client.calls == 1 + 4
    assert len(dead.entries) == 64  # nothing lost, just not split further
    assert any("budget" in reason for _, reason, _ in dead.entries)


def test_permanent_error_without_dead_letter_raises_and_keeps_rows() -> None:
    client = FakeClient([DataError("Invalid None value in non-Nullable column")])
    w = writer(client)
    w.add([call("a")])
    with pytest.raises(PermanentError):
        w.flush()
    assert w.pending == 1


# classification --------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OperationalError("Error HTTPConnectionPool: read timed out"), TransientError),
        (ConnectionRefusedError(), TransientError),
        (DatabaseError("Code: 159. TIMEOUT_EXCEEDED", code=159), TransientError),
        (DatabaseError("Code: 745. SERVER_OVERLOADED", code=745), TransientError),
        (DatabaseError("Code: 252. TOO_MANY_PARTS", code=252), TransientError),
        (DatabaseError("Code: 999999. unknown", code=999_999), TransientError),
        (DatabaseError("Code: 27. CANNOT_PARSE_INPUT", code=27), PermanentError),
        (DatabaseError("Code: 53. TYPE_MISMATCH", code=53), PermanentError),
        (DataError("Invalid None value in non-Nullable column"), PermanentError),
        (ValueError("Invalid isoformat string"), PermanentError),
        (TypeError("unsupported operand"), PermanentError),
        (DatabaseError("Code: 60. UNKNOWN_TABLE", code=60), ConfigError),
        (DatabaseError("Code: 516. AUTHENTICATION_FAILED", code=516), ConfigError),
    ],
)
def test_classify(exc: BaseException, expected: type[Exception]) -> None:
    assert type(classify(exc)) is expected


def test_classify_leaves_bugs_alone() -> None:
    assert classify(KeyError("x")) is None


def test_translated_prefixes_context_and_chains() -> None:
    cause = DatabaseError("Code: 60. UNKNOWN_TABLE", code=60)
    expected = r"^migrating wcs: DatabaseError: Code: 60"
    with pytest.raises(ConfigError, match=expected) as info, translated("migrating wcs"):
        raise cause
    assert info.value.__cause__ is cause


def test_translated_passes_sink_errors_and_bugs_through() -> None:
    with pytest.raises(Backpressure), translated("x"):
        raise Backpressure(1, 1, 1)
    with pytest.raises(KeyError), translated("x"):
        raise KeyError("bug")


# freshness -------------------------------------------------------------------


def test_flush_records_the_age_of_events_rows_when_inserted() -> None:
    clock = Clock()
    w = writer(clock=clock)
    w.add_envelope(envelope("e1"))  # received_at 7
    w.add([call("a")])  # not an events row: not observed
    clock.now = 1_507
    w.flush()
    assert w.freshness.count == 1
    assert w.freshness.sum == 1.5


def test_a_failed_insert_records_no_freshness() -> None:
    clock = Clock()
    w = writer(FakeClient([OperationalError("down")]), clock, retry=RetryPolicy(max_attempts=1))
    w.add_envelope(envelope("e1"))
    with pytest.raises(TransientError):
        w.flush()
    assert w.freshness.count == 0
