"""One input in N runtimes that each own a share of the entity keys, with one runtime's rows.

The groundwork of a replay that processes in several processes (bench/README.md: two
``replay`` processes on key-split halves run at 1.9x one). Pure, no IO; processes and the
database are the caller's. The properties in tests/unit/test_properties.py compare it with
one runtime: final rows, windows included, and the alerts in the same order.

* **Parts.** Every part is fed *every* envelope of the input, in input order, with the
  index of the part that owns each (the caller's choice, one owner per entity key: e.g.
  the key hash Kafka partitions by). A part applies its own envelopes and lets the others
  only move its clock (``PartitionRuntime.feed(owned=...)``), so every part's clock moves
  exactly as one runtime's would, and its entities' timeouts and its window due points
  fall at the same envelopes. Entity rows need no merging: an entity lives in one part.
* **Windows.** A part counts its own entities' statuses: its window rows are partial
  counts, taken from it with the clock they were emitted at (``take_emissions``).
  ``Merger`` keeps each part's latest partial of every window and emits their sums (counts
  only grow; ``version`` = the sum of the counters, as in one runtime), once per window at
  each due point or flush, as one runtime emits it.
* **Alerts.** The one alert stage runs in the merger on the summed rows, at the clock
  values one runtime would run it at: the merger has a runtime that owns no envelope and is
  fed the same batches, and a stage that takes the summed rows emitted at a clock right
  before that runtime asks whether the detector is due there.

Feed the parts and the merger the same batches in the same order and flush them at the same
points; hand the merger every part's ``take_emissions()`` after the parts' ``feed`` (or
``flush``) and before its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import groupby
from typing import Any

from events.envelope import Envelope
from events.tables import Row
from processors.alert_rules import AlertRules
from processors.alert_stage import AlertStage
from processors.clock import TimerKey
from processors.config import ProcessorConfig
from processors.runtime import PartitionRuntime
from processors.windows import COUNTERS, DIMS, render

# (clock, emitted at a due point (else by a flush), partial window rows)
Emission = tuple[int | None, bool, list[Row]]
Lookup = Callable[[set[TimerKey]], Iterable[tuple[TimerKey, Any]]]
_NO_RULES = AlertRules(rules=())


class _Tap(AlertStage):
    """Where a part's runtime hands its window rows: recorded with its clock, not evaluated."""

    def __init__(self) -> None:
        super().__init__(_NO_RULES)
        self.runtime: PartitionRuntime | None = None
        self.flushing = False
        self.emissions: list[Emission] = []

    def accept(self, rows: list[Row]) -> None:
        if rows and self.runtime is not None:
            self.emissions.append((self.runtime.clock, not self.flushing, rows))

    @property
    def next_due(self) -> int | None:
        return None

    def advance(self, now_ms: int) -> list[Row]:
        return []


class Part:
    """One share of the keys: a runtime fed every envelope, applying only its own."""

    def __init__(self, cfg: ProcessorConfig, index: int, persistent: bool = False) -> None:
        self.index = index
        self._tap = _Tap()
        self.runtime = PartitionRuntime(cfg, self._tap, persistent)
        self._tap.runtime = self.runtime

    def feed(
        self, batch: Sequence[Envelope], owners: Sequence[int], lookup: Lookup | None = None
    ) -> list[tuple[int, str]]:
        """Apply the envelopes of ``batch`` whose owner (``owners[i]``) is this part, every one
        moving the clock; returns the owned ones rejected as ``PartitionRuntime.feed`` does.
        ``lookup``: the stored states of owned keys not in memory (as ``Store.feed``)."""
        index, runtime = self.index, self.runtime
        owned = [owner == index for owner in owners]
        keys = runtime.keys_of(batch, owned)
        if lookup is not None:
            unknown = runtime.unknown_keys(batch, keys)
            if unknown:
                runtime.adopt(lookup(unknown))
        return runtime.feed(batch, keys=keys, owned=owned)

    def load_meta(self, meta: dict[str, Any]) -> None:
        """Continue one runtime's stored meta: its clock; the first part also takes its
        windows (each part's counts are added to the others'). Adopt the stored open states
        of the keys this part owns after this."""
        windows = meta["windows"] if self.index == 0 else {"late_dropped": 0, "windows": []}
        self.runtime.load_meta({"clock": meta["clock"], "windows": windows, "stage": None})

    def flush(self, windows: bool = True) -> list[Row]:
        """This part's entity and gap rows (its window rows are in ``take_emissions``)."""
        self._tap.flushing = True
        try:
            rows = self.runtime.flush(windows)
        finally:
            self._tap.flushing = False
        return [row for row in rows if row[0] not in COUNTERS]

    def take_emissions(self) -> list[Emission]:
        emissions, self._tap.emissions = self._tap.emissions, []
        return emissions


class WindowSums:
    """Each part's latest partial row of every window, and their sums."""

    def __init__(self) -> None:
        self.latest: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = {}

    def add(self, partials: Iterable[tuple[int, list[Row]]]) -> list[Row]:
        """Partial rows of parts in, ``(part, rows)``; the summed row of every window they
        touch out, once (one runtime emits a window once per due point or flush)."""
        touched: dict[tuple[Any, ...], Row] = {}
        for part, rows in partials:
            for table, values in rows:
                key = (table, values["window_start"], *(values[d] for d in DIMS[table]))
                self.latest.setdefault(key, {})[part] = values
                touched[key] = (table, values)
        out: list[Row] = []
        for key, (table, values) in touched.items():
            partials_of = self.latest[key].values()
            summed = dict(values)
            for counter in COUNTERS[table]:
                summed[counter] = sum(p[counter] for p in partials_of)
            summed["version"] = sum(summed[c] for c in COUNTERS[table])
            out.append((table, summed))
        return out

    def seed(self, part: int, windows: dict[str, Any]) -> None:
        """Windows restored into ``part`` (``WindowCounts.to_json``) are its latest partials."""
        for start, table, dims, counts, _ in windows["windows"]:
            _, values = render(start, (table, tuple(dims)), counts)
            key = (table, start, *(values[d] for d in DIMS[table]))
            self.latest.setdefault(key, {})[part] = values

    def forget_before(self, start: int) -> None:
        """Drop windows that started before ``start`` (past their retention: never again)."""
        self.latest = {k: v for k, v in self.latest.items() if k[1] >= start}


class _Summing(AlertStage):
    """The merger's stage: the summed rows of each due point, then the real detector."""

    def __init__(self, real: AlertStage | None, sums: WindowSums) -> None:
        super().__init__(_NO_RULES if real is None else real.rules)
        self.real, self.sums = real, sums
        self.runtime: PartitionRuntime | None = None
        self.queue: list[tuple[int, int, list[Row]]] = []  # (clock, part, rows), clock order
        self.out: list[Row] = []

    def accept(self, rows: list[Row]) -> None:
        # the merger's runtime stopped at a clock (its own windows are always empty)
        clock = None if self.runtime is None else self.runtime.clock
        due: list[tuple[int, int, list[Row]]] = []
        while self.queue and clock is not None and self.queue[0][0] <= clock:
            due.append(self.queue.pop(0))
        for _, group in groupby(due, key=lambda item: item[0]):  # one due point per clock
            self.take([(part, partial) for _, part, partial in group])

    def take(self, partials: list[tuple[int, list[Row]]]) -> None:
        """The parts' partial rows of one due point or flush, summed, to the detector."""
        summed = self.sums.add(partials)
        self.out += summed
        if self.real is not None:
            self.real.accept(summed)

    @property
    def next_due(self) -> int | None:
        dues = [self.queue[0][0]] if self.queue else []
        if self.real is not None and self.real.next_due is not None:
            dues.append(self.real.next_due)
        return min(dues) if dues else None

    def advance(self, now_ms: int) -> list[Row]:
        real = self.real
        if real is None or real.next_due is None or real.next_due > now_ms:
            return []
        return real.advance(now_ms)

    def to_json(self) -> dict[str, Any]:
        return {} if self.real is None else self.real.to_json()

    def load(self, data: dict[str, Any]) -> None:
        if self.real is not None and data:
            self.real.load(data)


class Merger:
    """Sums the parts' windows; runs the one alert stage at one runtime's clock values."""

    def __init__(self, cfg: ProcessorConfig, stage: AlertStage | None = None) -> None:
        self.cfg = cfg
        self.sums = WindowSums()
        self.stage = _Summing(stage, self.sums)
        self.runtime = PartitionRuntime(cfg, self.stage)
        self.stage.runtime = self.runtime
        self._flushed: list[tuple[int, list[Row]]] = []

    def load_meta(self, meta: dict[str, Any]) -> None:
        """Continue one runtime's stored meta: its clock and alert stage; its windows are the
        first part's (``Part.load_meta``), so they are that part's latest partials here."""
        empty = {"late_dropped": 0, "windows": []}
        self.runtime.load_meta({"clock": meta["clock"], "windows": empty, "stage": meta["stage"]})
        self.sums.seed(0, meta["windows"])

    def meta(self, part_metas: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """One runtime's meta from the parts' (``PartitionRuntime.meta``, taken at the same
        point of the input): the common clock, the windows summed, the alert stage."""
        clocks = {meta["clock"] for meta in part_metas} | {self.runtime.clock}
        if len(clocks) != 1:
            raise ValueError(f"parts at different points of the input: clocks {clocks}")
        return {
            "clock": self.runtime.clock,
            "windows": sum_windows([meta["windows"] for meta in part_metas]),
            "stage": self.stage.to_json() if self.stage.real is not None else None,
        }

    def add(self, part_emissions: Sequence[list[Emission]]) -> None:
        """Every part's ``take_emissions()`` (index = part) since the last call."""
        queue = self.stage.queue
        for part, emissions in enumerate(part_emissions):
            for clock, at_due, rows in emissions:
                if at_due and clock is not None:
                    queue.append((clock, part, rows))
                else:
                    self._flushed.append((part, rows))
        queue.sort(key=lambda item: (item[0], item[1]))  # stable for equal clocks
        self.runtime.stage_changed()

    def feed(self, batch: Sequence[Envelope]) -> None:
        """The batch the parts were fed (only each envelope's ``received_at`` is read)."""
        self.runtime.feed(batch, owned=[False] * len(batch))

    def flush(self, windows: bool = True) -> list[Row]:
        """Summed window rows and alert rows since the last flush; with ``windows`` also the
        sums of the windows the parts' flush emitted (``add`` those emissions first)."""
        rows = self.runtime.flush(windows)  # alert rows: its own windows are empty
        if windows:
            self.stage.take(self._flushed)
            self._flushed = []
            self.runtime.stage_changed()
        clock = self.runtime.clock
        if clock is not None:  # the parts dropped these windows: they never come again
            cfg = self.cfg
            self.sums.forget_before(clock - cfg.window_retention_ms - 2 * cfg.window_ms)
        out, self.stage.out = self.stage.out, []
        return out + rows


def sum_windows(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``WindowCounts.to_json`` of the parts, added up: counts summed per window, a window
    changed since its last emission if it is in any part, late drops summed."""
    held: dict[tuple[Any, ...], list[Any]] = {}
    for data in parts:
        for start, table, dims, counts, dirty in data["windows"]:
            key = (start, table, tuple(dims))
            found = held.get(key)
            if found is None:
                held[key] = [start, table, list(dims), list(counts), dirty]
            else:
                found[3] = [a + b for a, b in zip(found[3], counts, strict=True)]
                found[4] = found[4] or dirty
    return {
        "late_dropped": sum(data["late_dropped"] for data in parts),
        "windows": list(held.values()),
    }
