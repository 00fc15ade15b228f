"""A simulated WCS trace with known ground truth, through the real CLI into chDB."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from events.tables import TABLES
from tests.e2e.service import Service, cli, query

pytestmark = pytest.mark.e2e

# truth list -> (table, key columns); truth columns absent from the table are not compared
COMPARED = {
    "calls": ("calls", ("call_id",)),
    "streams": ("streams", ("media_session_id",)),
    "keepalive_gaps": ("keepalive_gaps", ("media_session_id", "gap_start")),
    "connections": ("connections", ("node_id", "session_id")),
    "messages": ("messages", ("message_id",)),
    "status_counts": ("status_counts", ("window_start", "family", "status", "app_key", "node_id")),
    "message_rates": ("message_rates", ("window_start", "app_key", "node_id")),
}


def _select(table: str, columns: list[str]) -> str:
    times = TABLES[table].time_columns
    parts = [f"toUnixTimestamp64Milli({c}) AS {c}" if c in times else c for c in columns]
    return f"SELECT {', '.join(parts)} FROM {table} FINAL"


def _keyed(rows: list[dict[str, Any]], key: tuple[str, ...]) -> dict[tuple[Any, ...], Any]:
    keyed = {tuple(row[k] for k in key): row for row in rows}
    assert len(keyed) == len(rows), "duplicate keys"
    return keyed


def _compare(data_dir: Path, truth: dict[str, Any], name: str) -> None:
    table, key = COMPARED[name]
    expected = truth[name]
    assert expected, f"truth has no {name}"
    columns = [c for c in expected[0] if c in TABLES[table].column_names]
    actual = _keyed(query(data_dir, _select(table, columns)), key)
    wanted = _keyed([{c: row[c] for c in columns} for row in expected], key)
    assert actual.keys() == wanted.keys(), name
    mismatches = [(k, actual[k], wanted[k]) for k in wanted if actual[k] != wanted[k]]
    assert not mismatches, f"{name}: {len(mismatches)} rows differ, first: {mismatches[0]}"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    work = tmp_path_factory.mktemp("truth")
    trace = work / "trace.ndjson"
    cli("simulate", "--out", str(trace), "--seed", "7", "--scale", "2")
    data = work / "data"
    out = cli("replay", str(trace), "--data-dir", str(data))
    assert "0 rejected" in out
    truth = orjson.loads(Path(f"{trace}.truth.json").read_bytes())
    return data, truth


@pytest.mark.parametrize("name", sorted(COMPARED))
def test_replay_matches_ground_truth_exactly(replayed: tuple[Path, Any], name: str) -> None:
    data_dir, truth = replayed
    _compare(data_dir, truth, name)


def test_replay_is_idempotent(replayed: tuple[Path, Any], tmp_path: Path) -> None:
    data_dir, truth = replayed
    trace = data_dir.parent / "trace.ndjson"
    before = query(data_dir, "SELECT count() AS n FROM calls FINAL")
    cli("replay", str(trace), "--data-dir", str(data_dir))  # the same input again
    assert query(data_dir, "SELECT count() AS n FROM calls FINAL") == before
    for name in ("calls", "status_counts", "message_rates"):
        _compare(data_dir, truth, name)


def test_replay_reports_bad_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    envelope = {
        "v": 1,
        "id": "a",
        "received_at": 1_767_225_600_000,
        "method": "connect",
        "family": "connection",
        "key": "n/s",
        "body": {"nodeId": "n", "sessionId": "s"},
    }
    good = orjson.dumps(envelope)
    seconds = orjson.dumps({**envelope, "id": "b", "received_at": 1_767_225_600})  # not ms
    trace = tmp_path / "mixed.ndjson"
    trace.write_bytes(good + b"\n{not json\n" + seconds + b"\n" + b'{"v": 1}\n')
    with pytest.raises(RuntimeError, match="replay exited 1"):
        cli(
            "replay",
            str(trace),
            "--data-dir",
            str(tmp_path / "data"),
            "--rejects",
            str(tmp_path / "rejects.ndjson"),
        )
    rejected = (tmp_path / "rejects.ndjson").read_bytes().splitlines()
    assert len(rejected) == 3 and rejected[0] == b"{not json"  # in line order
    assert b'"id":"b"' in rejected[1] and rejected[2] == b'{"v": 1}'
    assert query(tmp_path / "data", "SELECT count() AS n FROM events") == [{"n": 1}]
    assert query(tmp_path / "data", "SELECT count() AS n FROM connections FINAL") == [{"n": 1}]


@pytest.mark.parametrize("processing", ["inline", "process"])
def test_simulated_traffic_over_http_matches_truth(
    tmp_path: Path, service_factory: list[Service], processing: str
) -> None:
    trace = tmp_path / "trace.ndjson"
    cli("simulate", "--out", str(trace), "--seed", "11")
    truth = orjson.loads(Path(f"{trace}.truth.json").read_bytes())
    svc = Service(tmp_path / "data", env={"WCS_PROCESSING": processing})
    service_factory.append(svc.start())
    out = cli("simulate", "--post", svc.url, "--seed", "11", "--concurrency", "8")
    assert f"statuses {{200: {truth['summary']['hooks']}}}" in out
    assert svc.stop() == 0
    data = svc.data_dir
    # Over HTTP the service stamps its own received_at, so compare what does not depend on
    # timing: every entity, its disposition / final status, and the status totals.
    calls = {
        r["call_id"]: r["disposition"]
        for r in query(data, "SELECT call_id, disposition FROM calls FINAL")
    }
    assert calls == {c["call_id"]: c["disposition"] for c in truth["calls"]}
    messages = {
        r["message_id"]: r["final_status"]
        for r in query(data, "SELECT message_id, final_status FROM messages FINAL")
    }
    assert messages == {m["message_id"]: m["final_status"] for m in truth["messages"]}
    ended = {
        s["media_session_id"]: s["final_status"]
        for s in truth["streams"]
        if s["closed_by"] == "event"
    }
    streams = {
        r["media_session_id"]: r["final_status"]
        for r in query(data, "SELECT media_session_id, final_status FROM streams FINAL")
    }
    assert streams.keys() == {s["media_session_id"] for s in truth["streams"]}
    assert {k: streams[k] for k in ended} == ended
    totals = Counter()
    for row in truth["status_counts"]:
        totals[(row["family"], row["status"])] += row["count"]
    got = {
        (r["family"], r["status"]): r["n"]
        for r in query(
            data,
            "SELECT family, status, sum(count) AS n FROM status_counts FINAL "
            "GROUP BY family, status",
        )
    }
    assert got == dict(totals)
