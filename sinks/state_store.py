"""Where a partition's state lives between runs: the ``entity_state`` table of its database.

One row per entity (its JSON state, latest ``version`` wins), one per partition (family '',
key = the partition id: clock, the alert stage, which minutes' window counters it holds)
and one per held minute of window counters (family ``#windows``, key ``<partition>@<minute
start>``), written only when that minute's counters changed: under live traffic a flush
writes the current minute, not the hour of windows a partition holds (~0.8 MB of JSON a
flush for two nodes' traffic, bench/README.md). Because the state is in
the database the rows are in, a state can never be applied to another database, a
replay in parts continues where the last part stopped, and a Kafka partition moves
between workers with its state. Closed entities evicted from memory are found here again
(``lookup``, batched per feed, only for keys the ``KeyFilter`` has seen) so a real end that
arrives days after a timeout still updates its session (docs/processing.md#lifecycle).

Threads: ``rows_for`` (serialising, in the runtime's thread) and ``written`` (after the
insert, in the writer's thread) share ``_inflight`` under a lock; ``lookup`` runs in the
runtime's thread with its own client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from processors.clock import TimerKey
from processors.families import family
from processors.runtime import Checkpoint
from processors.state_codec import dump, load
from sinks.errors import translated
from sinks.key_filter import KeyFilter

log = logging.getLogger(__name__)

Values = dict[str, Any]
META: str = ""  # family of the partition row
WINDOWS: str = "#windows"  # family of a partition's window rows, one per minute it holds


def encode(state: Any) -> str:
    return orjson.dumps(dump(state)).decode()


def decode(family_name: str, text: str) -> Any:
    return load(family(family_name).state_cls, orjson.loads(text))


def split_meta(meta: dict[str, Any]) -> tuple[dict[str, Any], dict[int, str]]:
    """A partition's meta (``PartitionRuntime.meta``) as stored: the meta with the starts of
    the minutes its windows are in instead of the windows, and each minute's windows as JSON
    (as in the meta: ``[start, table, dims, counts, changed]``). Pure."""
    windows = meta["windows"]
    minutes: dict[int, list[Any]] = {}
    for window in windows["windows"]:
        minutes.setdefault(window[0], []).append(window)
    texts = {start: orjson.dumps(held).decode() for start, held in sorted(minutes.items())}
    stored = {"late_dropped": windows["late_dropped"], "minutes": list(texts)}
    return {**meta, "windows": stored}, texts


def join_meta(meta: dict[str, Any], minutes: dict[int, str]) -> dict[str, Any]:
    """``split_meta`` undone: the meta with its windows, from the stored minutes (``minutes``:
    start -> JSON). A meta written before minutes were stored apart has its windows already."""
    windows = meta["windows"]
    if "minutes" not in windows:
        return meta
    held = [
        window
        for start in windows["minutes"]
        if start in minutes
        for window in orjson.loads(minutes[start])
    ]
    return {**meta, "windows": {"late_dropped": windows["late_dropped"], "windows": held}}


def minute_key(part: str, start: int) -> str:
    return f"{part}@{start}"


class StateStore:
    """The state table of one runtime partition (``part``)."""

    def __init__(self, client: Any, database: str, part: str, now_ms: Callable[[], int]) -> None:
        self._client, self._db, self.part, self._now_ms = client, database, part, now_ms
        self.keys = KeyFilter()
        self._inflight: dict[TimerKey, str] = {}  # evicted, serialised, not written yet
        self._lock = threading.Lock()
        self._version = 0
        self._minutes: dict[int, str] = {}  # the window minutes written (or being written)
        self.lookups = 0
        self.lookup_hits = 0

    # ---- start ---------------------------------------------------------------------

    def load(self) -> tuple[dict[str, Any] | None, list[tuple[TimerKey, Any]]]:
        """(partition meta or None, open entity states); fills the key filter with every
        entity key stored for this partition."""
        return load_many([self])[self.part]

    # ---- lookups -------------------------------------------------------------------

    def lookup(self, keys: Iterable[TimerKey]) -> list[tuple[TimerKey, Any]]:
        """States of ``keys`` that are stored (closed entities evicted from memory). One
        query per family present, only for keys the filter may have seen."""
        return [(skey, decode(skey[0], text)) for skey, text in self.lookup_texts(keys)]

    def lookup_texts(
        self, keys: Iterable[TimerKey], filtered: bool = False
    ) -> list[tuple[TimerKey, str]]:
        """``lookup``, the states as their stored JSON text (for another process);
        ``filtered``: the caller's copy of the key filter passed the keys already."""
        found: list[tuple[TimerKey, str]] = []
        wanted: dict[str, list[str]] = {}
        with self._lock:
            inflight = dict(self._inflight)
        for fam, key in keys:
            text = inflight.get((fam, key))
            if text is not None:
                found.append(((fam, key), text))
            elif filtered or self.keys.might_contain(fam, key):
                wanted.setdefault(fam, []).append(key)
        for fam, names in wanted.items():
            self.lookups += 1
            with translated("looking up entity states"):
                rows = self._client.query(
                    f"SELECT key, argMax(state, version) FROM {self._db}.entity_state "
                    "WHERE family = {f:String} AND key IN {ks:Array(String)} GROUP BY key",
                    parameters={"f": fam, "ks": names},
                ).result_rows
            found += [((fam, key), text) for key, text in rows]
        self.lookup_hits += len(found)
        return found

    # ---- writing -------------------------------------------------------------------

    def rows_for(
        self, checkpoint: Checkpoint, is_open: Callable[[TimerKey, Any], bool]
    ) -> list[Values]:
        """The state rows of a checkpoint, serialised now (the states are live objects the
        runtime keeps changing). Evicted states stay findable until ``written``."""
        version, now = self.next_version()
        rows, evicted = state_rows(checkpoint, is_open, self.part, version, now)
        self.track(rows, evicted)
        return [*rows, *self.meta_rows(checkpoint.meta, version, now)]

    def next_version(self) -> tuple[int, int]:
        """(version, wall ms) of the next checkpoint's rows: versions only grow."""
        now = self._now_ms()
        self._version = max(self._version + 1, now * 1000)
        return self._version, now

    def track(
        self, rows: list[Values], evicted: dict[TimerKey, str], filter_keys: bool = True
    ) -> None:
        """State rows serialised elsewhere (``state_rows``) are about to be written: their
        keys are stored (unless the key filter that matters is elsewhere), their evicted
        states findable until ``written``."""
        if filter_keys:
            for row in rows:
                self.keys.add(row["family"], row["key"])
        with self._lock:
            self._inflight.update(evicted)

    def meta_rows(self, meta: dict[str, Any], version: int, now: int) -> list[Values]:
        """The partition's own row (clock, alert stage, the minutes of windows it holds) and
        a row for each minute of windows changed since this store's last ``meta_rows`` (all
        of them the first time). A write is retried until it lands or the process ends, and
        a new process starts with nothing written, so the last call is what is stored."""
        part = self.part
        stored, minutes = split_meta(meta)
        written, self._minutes = self._minutes, minutes
        rows = [
            _row((WINDOWS, minute_key(part, start)), part, start, False, text, now, version)
            for start, text in minutes.items()
            if written.get(start) != text
        ]
        text = orjson.dumps(stored).decode()
        rows.append(_row((META, part), part, meta.get("clock") or 0, True, text, now, version))
        return rows

    def written(self, rows: list[Values]) -> None:
        """The rows are in the table: their evicted states no longer need keeping here."""
        with self._lock:
            for row in rows:
                key = (row["family"], row["key"])
                if self._inflight.get(key) is row["state"]:  # not evicted again since
                    del self._inflight[key]


def state_rows(
    checkpoint: Checkpoint,
    is_open: Callable[[TimerKey, Any], bool],
    part: str,
    version: int,
    now: int,
) -> tuple[list[Values], dict[TimerKey, str]]:
    """The entity rows of a checkpoint (not its meta row), serialised now, and the evicted
    states' texts. Pure: a part process of ``replay --jobs`` renders its own."""
    rows = []
    evicted: dict[TimerKey, str] = {}
    for source, is_evicted in ((checkpoint.states, False), (checkpoint.evicted, True)):
        for skey, state in source.items():
            text = encode(state)
            if is_evicted:
                evicted[skey] = text
            open_ = is_open(skey, state)
            rows.append(_row(skey, part, state.last_event_at, open_, text, now, version))
    return rows, evicted


def _row(
    skey: TimerKey, part: str, last: int, open_: bool, text: str, now: int, version: int
) -> Values:
    return {
        "family": skey[0],
        "key": skey[1],
        "part": part,
        "open": int(open_),
        "last_event_at": last,
        "written_at": now,
        "state": text,
        "version": version,
    }


Loaded = tuple[dict[str, Any] | None, list[tuple[TimerKey, Any]]]


def load_many(stores: list[StateStore]) -> dict[str, Loaded]:
    """``load`` of several partitions' stores (one database, one client) in three queries
    whatever their number (four when they hold windows): a worker given 24 partitions by a
    rebalance reads their state at once instead of one partition at a time."""
    if not stores:
        return {}
    first = stores[0]
    client, db, parts = first._client, first._db, [store.part for store in stores]
    with translated(f"reading the state of {', '.join(parts)}"):
        meta_rows = client.query(
            f"SELECT key, argMax(state, version) FROM {db}.entity_state "
            "WHERE family = '' AND key IN {ps:Array(String)} GROUP BY key",
            parameters={"ps": parts},
        ).result_rows
        metas = {part: orjson.loads(text) for part, text in meta_rows if text}
        wanted = [
            minute_key(part, start)
            for part, meta in metas.items()
            for start in meta["windows"].get("minutes", ())
        ]
        minute_rows: list[Any] = []
        if wanted:  # a fresh database has none: one query less to start
            minute_rows = client.query(
                f"SELECT key, argMax(state, version) FROM {db}.entity_state "
                "WHERE family = {w:String} AND key IN {ks:Array(String)} GROUP BY key",
                parameters={"w": WINDOWS, "ks": wanted},
            ).result_rows
        keys = client.query(
            f"SELECT part, family, key FROM {db}.entity_state WHERE part IN {{ps:Array(String)}} "
            "AND family NOT IN ('', {w:String}) GROUP BY part, family, key",
            parameters={"ps": parts, "w": WINDOWS},
        ).result_rows
        open_rows = client.query(
            f"SELECT part, family, key, argMax(state, version) "
            f"FROM {db}.entity_state WHERE part IN {{ps:Array(String)}} "
            "AND family NOT IN ('', {w:String}) "
            "GROUP BY part, family, key HAVING argMax(open, version) = 1",
            parameters={"ps": parts, "w": WINDOWS},
        ).result_rows
    by_part = {store.part: store for store in stores}
    for part, fam, key in keys:
        by_part[part].keys.add(fam, key)
    minutes: dict[str, dict[int, str]] = {}
    for key, text in minute_rows:
        part, _, start = key.rpartition("@")
        minutes.setdefault(part, {})[int(start)] = text
    if len(minute_rows) < len(wanted):  # deleted by hand, or kept unwritten past the TTL
        found = {key for key, _ in minute_rows}
        missing = [key for key in wanted if key not in found]
        log.warning("the window counters of %d stored minute(s) are missing (%s): they "
                    "count again from 0", len(missing), ", ".join(missing[:5]))  # fmt: skip
    metas = {part: join_meta(meta, minutes.get(part, {})) for part, meta in metas.items()}
    loaded: dict[str, Loaded] = {part: (metas.get(part), []) for part in parts}
    for part, fam, key, text in open_rows:
        loaded[part][1].append(((fam, key), decode(fam, text)))
    return loaded
