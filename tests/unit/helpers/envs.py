"""Envelope builders and row checks for the processors tests (no IO)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from events.catalog import resolve
from events.envelope import Envelope, make
from events.tables import Row, check_row
from processors.config import ProcessorConfig

NODE = "node-1@10.0.0.1"
APP = "defaultApp"
SESSION = "sess-1"
CFG = ProcessorConfig()

S = TypeVar("S")
Step = Callable[[S | None, Envelope, ProcessorConfig], tuple[S, list[Row]]]


class Envs:
    """Builds envelopes with unique ids; ``defaults`` go into every body (None drops a key)."""

    def __init__(self, prefix: str = "e", **defaults: Any) -> None:
        self._ids = itertools.count(1)
        self._prefix = prefix
        self.defaults = {"nodeId": NODE, "appKey": APP, "sessionId": SESSION, **defaults}

    def __call__(self, method: str, t: int, status: str | None = None, **body: Any) -> Envelope:
        merged = {**self.defaults, **body}
        if status is not None:
            merged["status"] = status
        merged = {k: v for k, v in merged.items() if v is not None}
        return make(resolve(method), merged, t, f"{self._prefix}-{next(self._ids)}")


def calls(call_id: str = "call-1", **defaults: Any) -> Envs:
    return Envs("c", callId=call_id, **defaults)


def streams(media_session_id: str = "ms-1", **defaults: Any) -> Envs:
    return Envs("s", mediaSessionId=media_session_id, **defaults)


def messages(message_id: str = "msg-1", **defaults: Any) -> Envs:
    return Envs("m", id=message_id, **defaults)


def connections(session_id: str = SESSION, **defaults: Any) -> Envs:
    return Envs("w", sessionId=session_id, **defaults)


def checked(rows: Iterable[Row]) -> list[Row]:
    """The rows, after ``check_row`` and basic type checks on each."""
    out = list(rows)
    for table, values in out:
        check_row((table, values))
        assert all(v is not None for k, v in values.items() if k in ("version", "node_id"))
    return out


def fold(
    step: Step[S], events: Sequence[Envelope], cfg: ProcessorConfig = CFG, state: S | None = None
) -> tuple[S, list[Row]]:
    """Run ``events`` through ``step`` in order; returns the final state and every row."""
    rows: list[Row] = []
    assert events, "fold needs at least one event"
    for env in events:
        state, emitted = step(state, env, cfg)
        rows += checked(emitted)
    assert state is not None
    return state, rows


def of(rows: Iterable[Row], table: str) -> list[dict[str, Any]]:
    return [values for name, values in rows if name == table]


def last(rows: Iterable[Row], table: str) -> dict[str, Any]:
    found = of(rows, table)
    assert found, f"no {table} row emitted"
    return found[-1]


def unversioned(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "version"}


def live_gaps(rows: Iterable[Row]) -> set[tuple[int, int]]:
    """What ReplacingMergeTree(version, is_deleted) keeps of the keepalive_gaps rows."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for row in of(rows, "keepalive_gaps"):
        key = (row["media_session_id"], row["gap_start"])
        if key not in latest or row["version"] > latest[key]["version"]:
            latest[key] = row
    return {(r["gap_start"], r["gap_end"]) for r in latest.values() if not r["is_deleted"]}


def assert_versions_increase(rows: Iterable[dict[str, Any]]) -> None:
    versions = [row["version"] for row in rows]
    assert versions == sorted(set(versions)), versions
    assert not versions or versions[0] >= 1
