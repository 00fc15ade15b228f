"""InsertThread: one batch in flight, submit waits (the backpressure), failed writes are
retried until written, close hands back what could not be written. Fake client, no IO."""

from __future__ import annotations

import threading
from typing import Any

from clickhouse_connect.driver.exceptions import OperationalError

from events.tables import TABLES
from sinks.batch import Batch
from sinks.insert_thread import InsertThread
from sinks.writer import ClickHouseWriter, RetryPolicy

WAIT_S = 5.0  # generous: the machine is shared; the tests never sleep this long when passing


class GatedClient:
    """Inserts wait for ``gate``; the first ``failures`` inserts raise."""

    def __init__(self, failures: int = 0, gated: bool = False) -> None:
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.started = threading.Event()
        self.failures = failures
        self.tables: list[str] = []

    def insert(self, table: str, data: Any, **kwargs: Any) -> None:
        self.started.set()
        assert self.gate.wait(WAIT_S)
        if self.failures:
            self.failures -= 1
            raise OperationalError("connection reset")
        self.tables.append(table)


def batch_of(*call_ids: str) -> Batch:
    batch = Batch()
    rows = []
    for call_id in call_ids:
        values = {name: None for name in TABLES["calls"].column_names}
        rows.append(("calls", values | {"call_id": call_id}))
    batch.add_rows(rows)
    return batch


def thread_for(client: GatedClient) -> InsertThread:
    writer = ClickHouseWriter(
        client, "wcs", now_ms=lambda: 0, retry=RetryPolicy(max_attempts=1), sleep=lambda _: None
    )
    return InsertThread(writer)


def test_submitted_batch_is_written_then_after_runs() -> None:
    client = GatedClient()
    inserts = thread_for(client)
    done: list[list[str]] = []
    assert inserts.submit(batch_of("a"), lambda: done.append(list(client.tables)))
    assert inserts.wait(WAIT_S)
    assert done == [["calls"]] and not inserts.busy
    assert inserts.close(WAIT_S) is None


def test_submit_waits_while_a_batch_is_in_flight() -> None:
    client = GatedClient(gated=True)
    inserts = thread_for(client)
    assert inserts.submit(batch_of("a"))
    assert client.started.wait(WAIT_S) and inserts.busy
    assert not inserts.submit(batch_of("b"), timeout=0.05)  # nothing queued
    assert not inserts.wait(0.01)
    client.gate.set()
    assert inserts.submit(batch_of("c"), timeout=WAIT_S)
    assert inserts.wait(WAIT_S)
    assert client.tables == ["calls", "calls"]
    assert inserts.close(WAIT_S) is None


def test_failed_write_is_retried_until_written() -> None:
    client = GatedClient(failures=1)
    inserts = thread_for(client)
    after = threading.Event()
    assert inserts.submit(batch_of("a"), after.set)
    assert after.wait(WAIT_S)  # written after one backoff (0.5 s)
    assert (inserts.failures, client.tables) == (1, ["calls"])
    assert "connection reset" in inserts.last_error
    assert inserts.close(WAIT_S) is None


def test_close_hands_back_the_batch_it_could_not_write() -> None:
    client = GatedClient(failures=10**6)
    inserts = thread_for(client)
    batch = batch_of("a", "b")
    ran: list[bool] = []
    assert inserts.submit(batch, lambda: ran.append(True))
    assert client.started.wait(WAIT_S)
    assert inserts.close(timeout=0.05) is batch
    assert len(batch) == 2 and ran == []  # nothing dropped, nothing acknowledged
