"""Envelope builders, state-machine adapters and row checks for the processors tests (no IO)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any

import orjson

from events.catalog import resolve
from events.envelope import Envelope, make
from events.tables import TABLES, Row, check_row
from processors import state_codec
from processors.config import ProcessorConfig
from processors.families import FAMILIES, Family, entity_key

NODE = "node-1@10.0.0.1"
APP = "defaultApp"
SESSION = "sess-1"
CFG = ProcessorConfig()
BASE = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a plausible epoch-ms event time
MINUTE, HOUR = 60_000, 3_600_000

Step = Callable[[Any, Envelope, ProcessorConfig], tuple[Any, list[Row]]]
Expire = Callable[[Any, int, ProcessorConfig], list[Row]]


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


# ---- adapters over the mutable state machines ---------------------------------------------


def family_of(module: ModuleType) -> Family:
    """The registry entry driving ``module`` (calls, streams, messages, connections)."""
    (fam,) = [f for f in FAMILIES.values() if f.apply is module.apply]
    return fam


def rows_of(fam: Family, state: Any) -> list[Row]:
    """What the runtime renders for a changed state: its row when the version moved since the
    last row (then marked emitted), plus pending gap rows."""
    rows: list[Row] = []
    assert fam.render is not None and fam.table is not None
    if state.version != state.emitted:
        row = fam.render(state)
        row["version"] = state.version
        state.emitted = state.version
        rows.append((fam.table, row))
    if fam.extra_rows is not None:
        rows += fam.extra_rows(state)
    return checked(rows)


def step(module: ModuleType) -> Step:
    """``step(state | None, env, cfg) -> (state, rows)`` over ``module.apply``: the state is
    created by the first event (its key from ``entity_key``) and mutated in place after."""
    fam = family_of(module)

    def run(state: Any, env: Envelope, cfg: ProcessorConfig) -> tuple[Any, list[Row]]:
        if state is None:
            key, reason = entity_key(env)
            assert key is not None, reason
            state = fam.state_cls(key, env["received_at"])
        fam.apply(state, env, cfg)
        return state, rows_of(fam, state)

    return run


def expire(module: ModuleType) -> Expire:
    """``expire(state, now, cfg) -> rows``: closes by timeout when due, rows when that changed
    the row (messages close silently)."""
    fam = family_of(module)

    def run(state: Any, now_ms: int, cfg: ProcessorConfig) -> list[Row]:
        before = state.version
        closed = fam.expire(state, now_ms, cfg)
        if not closed:
            assert state.version == before
            return []
        return rows_of(fam, state)

    return run


def checked(rows: Iterable[Row]) -> list[Row]:
    """The rows, after ``check_row`` and basic type checks on each."""
    out = list(rows)
    for table, values in out:
        check_row((table, values))
        assert all(v is not None for k, v in values.items() if k in ("version", "node_id"))
    return out


def fold(
    run: Step, events: Sequence[Envelope], cfg: ProcessorConfig = CFG, state: Any = None
) -> tuple[Any, list[Row]]:
    """Run ``events`` through ``run`` in order; returns the final state and every row."""
    rows: list[Row] = []
    assert events, "fold needs at least one event"
    for env in events:
        state, emitted = run(state, env, cfg)
        rows += emitted
    assert state is not None
    return state, rows


def copy_state(state: Any) -> Any:
    """A deep copy through the JSON form the state store keeps (``state_codec``)."""
    return state_codec.load(type(state), orjson.loads(orjson.dumps(state_codec.dump(state))))


# ---- rows ---------------------------------------------------------------------------------


def of(rows: Iterable[Row], table: str) -> list[dict[str, Any]]:
    return [values for name, values in rows if name == table]


def last(rows: Iterable[Row], table: str) -> dict[str, Any]:
    found = of(rows, table)
    assert found, f"no {table} row emitted"
    return found[-1]


def unversioned(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "version"}


def table_key(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """The ORDER BY key ReplacingMergeTree collapses on."""
    return tuple(row[c] for c in TABLES[table].order_by)


def final(rows: Iterable[Row]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """What ``FINAL`` keeps: per (table, table key) the row with the highest version (the later
    one on a tie, as ReplacingMergeTree does for rows inserted later)."""
    kept: dict[tuple[Any, ...], dict[str, Any]] = {}
    for table, row in rows:
        key = (table, *table_key(table, row))
        held = kept.get(key)
        if held is None or row["version"] >= held["version"]:
            kept[key] = row
    return kept


def live_gaps(rows: Iterable[Row]) -> set[tuple[int, int]]:
    """What ReplacingMergeTree(version, is_deleted) keeps of the keepalive_gaps rows."""
    latest = final((t, r) for t, r in rows if t == "keepalive_gaps")
    return {(r["gap_start"], r["gap_end"]) for r in latest.values() if not r["is_deleted"]}


def assert_versions_increase(rows: Iterable[dict[str, Any]]) -> None:
    versions = [row["version"] for row in rows]
    assert versions == sorted(set(versions)), versions
    assert not versions or versions[0] >= 1
