"""Sessions stay right however late, long or split the input is (docs/processing.md#lifecycle),
through the real CLI into chDB: real ends long after the timeouts (replay, and `run` with a
restart in between), and replaying a trace in parts gives exactly the tables of the whole."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from events.catalog import resolve
from events.envelope import make
from events.tables import OUTPUT_TABLES
from tests.e2e.service import Service, cli, query

pytestmark = pytest.mark.e2e

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
H = 3_600_000
NODE, APP = "node-1@10.0.0.1", "lateApp"


def envelope(n: int, method: str, at: int, **body: Any) -> bytes:
    base = {"nodeId": NODE, "appKey": APP, "sessionId": "s-1"}
    return orjson.dumps(make(resolve(method), base | body, at, f"late-{n}"))


def long_sessions() -> list[bytes]:
    """A camera without keep-alives UNPUBLISHED after 36 h, a call FINISHed after 13 h of
    talk, a connection DISCONNECTED after 30 h, a message delivered 5 h late; hourly filler
    traffic moves the clock, so every one of them is first closed by its idle timeout and
    evicted long before its real end arrives."""
    stream, call, msg = {"mediaSessionId": "cam-1", "name": "cam"}, {"callId": "c-1"}, {"id": "m-1"}
    lines = [
        envelope(1, "connect", T0),
        envelope(2, "ConnectionStatusEvent", T0 + 10, status="ESTABLISHED"),
        envelope(3, "publishStream", T0 + 20, **stream, published=True),
        envelope(4, "StreamStatusEvent", T0 + 30, **stream, status="PUBLISHING"),
        envelope(5, "call", T0 + 40, **call, caller="a", callee="b"),
        envelope(6, "CallStatusEvent", T0 + 50, **call, status="RING"),
        envelope(7, "CallStatusEvent", T0 + 1000, **call, status="ESTABLISHED"),
        envelope(8, "sendMessage", T0 + 60, **msg, to="b", isImdnRequired=True),
        envelope(9, "MessageStatusEvent", T0 + 70, **msg, status="ACCEPTED"),
    ]
    for hour in range(1, 40):  # another app's short calls, one an hour
        other = {"callId": f"filler-{hour}", "appKey": "filler"}
        at = T0 + hour * H
        lines += [
            envelope(100 + 2 * hour, "CallStatusEvent", at, **other, status="RING"),
            envelope(101 + 2 * hour, "CallStatusEvent", at + 5000, **other, status="FINISH"),
        ]
    lines += [
        envelope(10, "MessageStatusEvent", T0 + 5 * H, **msg, status="IMDN_DELIVERED"),
        envelope(11, "CallStatusEvent", T0 + 1000 + 13 * H, **call, status="FINISH"),
        envelope(12, "ConnectionStatusEvent", T0 + 30 * H, status="DISCONNECTED"),
        envelope(13, "StreamStatusEvent", T0 + 36 * H, **stream, status="UNPUBLISHED"),
    ]
    return sorted(lines, key=lambda line: orjson.loads(line)["received_at"])


def test_real_ends_after_timeouts_win_through_replay(tmp_path: Path) -> None:
    trace = tmp_path / "long.ndjson"
    trace.write_bytes(b"\n".join(long_sessions()) + b"\n")
    data = tmp_path / "data"
    cli("replay", str(trace), "--data-dir", str(data))
    ms = "toUnixTimestamp64Milli"
    stream = query(data, f"SELECT lifetime_ms, closed_by, final_status, {ms}(ended_at) AS e "
                         "FROM streams FINAL")  # fmt: skip
    assert stream == [{"lifetime_ms": 36 * H - 30, "closed_by": "event",
                       "final_status": "UNPUBLISHED", "e": T0 + 36 * H}]  # fmt: skip
    call = query(data, "SELECT talk_ms, closed_by, disposition FROM calls FINAL "
                       "WHERE call_id = 'c-1'")  # fmt: skip
    assert call == [{"talk_ms": 13 * H, "closed_by": "event", "disposition": "ANSWERED"}]
    conn = query(data, "SELECT duration_ms, closed_by FROM connections FINAL")
    assert conn == [{"duration_ms": 30 * H - 10, "closed_by": "event"}]
    msg = query(data, f"SELECT {ms}(delivered_at) AS d, final_status FROM messages FINAL")
    assert msg == [{"d": T0 + 5 * H, "final_status": "IMDN_DELIVERED"}]
    rates = query(data, "SELECT sum(imdn_delivered) AS n FROM message_rates FINAL")
    assert rates == [{"n": 1}]
    # every one of them was closed by a timeout and evicted first: the state table has them
    closed = query(data, "SELECT count() AS n FROM entity_state WHERE family IN "
                         "('call', 'stream', 'connection', 'message') AND open = 0")  # fmt: skip
    assert closed[0]["n"] >= 4


def _post(svc: Service, method: str, body: dict[str, Any]) -> None:
    answer = httpx.post(f"{svc.url}/wcs/{method}", json=body, timeout=5.0)
    assert answer.status_code == 200, answer.text


MODES = [("inline", "inline"), ("process", "process"), ("process", "inline"), ("inline", "process")]


@pytest.mark.parametrize(("first", "second"), MODES)
def test_real_end_after_timeout_and_restart_through_run(
    tmp_path: Path, service_factory: list[Service], first: str, second: str
) -> None:
    """`run` with a 1 s idle timeout: the stream is closed by the timeout, the service
    restarts, and the real end then still wins (its closed state comes back from the
    database: it was not open, so not loaded at start). The processing in the service's
    process or in its own, before and after the restart: the state is the database's."""
    args = ("--stream-idle-timeout-ms", "1000", "--batch-interval-ms", "200")
    data = tmp_path / "data"
    stream = {"nodeId": NODE, "appKey": APP, "sessionId": "s-1", "mediaSessionId": "cam-2"}
    svc = Service(data, env={"WCS_PROCESSING": first}, args=args)
    service_factory.append(svc.start())
    _post(svc, "publishStream", stream | {"published": True})
    _post(svc, "StreamStatusEvent", stream | {"status": "PUBLISHING"})
    time.sleep(2.5)  # the idle timeout fires on the wall-clock-following event clock
    assert svc.stop() == 0
    timed_out = query(data, "SELECT closed_by FROM streams FINAL")
    assert timed_out == [{"closed_by": "timeout"}]
    again = Service(data, env={"WCS_PROCESSING": second}, args=args)
    service_factory.append(again.start())
    _post(again, "StreamStatusEvent", stream | {"status": "UNPUBLISHED"})
    assert again.stop() == 0
    rows = query(data, "SELECT closed_by, final_status, lifetime_ms > 2000 AS long FROM "
                       "streams FINAL")  # fmt: skip
    assert rows == [{"closed_by": "event", "final_status": "UNPUBLISHED", "long": True}]


def _tables(data: Path) -> dict[str, list[str]]:
    """Every output table under FINAL, all columns including version, as sorted JSON."""
    return {
        name: sorted(
            orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()
            for row in query(data, f"SELECT * FROM {name} FINAL")
        )
        for name in OUTPUT_TABLES
    }


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    work = tmp_path_factory.mktemp("whole")
    trace = work / "trace.ndjson"
    cli("simulate", "--out", str(trace), "--seed", "23", "--scale", "2")
    cli("replay", str(trace), "--data-dir", str(work / "data"))
    return trace, _tables(work / "data")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_in_parts_equals_replay_whole(
    seed: int, whole: tuple[Path, dict[str, list[str]]], tmp_path: Path
) -> None:
    """1-4 parts at random line boundaries, replayed one after the other into one data
    directory: the same rows, versions included, as one replay of the whole trace."""
    trace, want = whole
    lines = trace.read_bytes().splitlines(keepends=True)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(lines)), rng.randint(0, 3)))
    data = tmp_path / "data"
    for start, end in zip([0, *cuts], [*cuts, len(lines)], strict=True):
        part = tmp_path / f"part-{start}.ndjson"
        part.write_bytes(b"".join(lines[start:end]))
        cli("replay", str(part), "--data-dir", str(data))
    got = _tables(data)
    for name in OUTPUT_TABLES:
        assert got[name] == want[name], f"{name} differs with cuts {cuts}"
    assert sum(len(rows) for rows in want.values()) > 1000
