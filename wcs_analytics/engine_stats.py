"""What ``/metrics`` shows of an embedded engine, in one snapshot whichever process runs the
runtime (``Store`` in this one, ``ProcessStore`` in a processing process)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from processors.alert_stage import AlertStage
from processors.runtime import PartitionRuntime


@dataclass
class EngineStats:
    open_entities: int = 0
    in_memory: int = 0  # sessions in memory, open or closed within closed_retention
    stored_keys: int = 0  # entity keys known to be in the state table
    lookups: int = 0  # batched state-table lookups
    late_dropped: int = 0
    reused: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    status_totals: dict[tuple[str, str], int] = field(default_factory=dict)
    alerts_firing: int = 0
    alerts_emitted: int = 0


def engine_stats(runtime: PartitionRuntime, stored_keys: int, lookups: int) -> EngineStats:
    """A copy of the runtime's counters (safe to hand to another thread or process)."""
    counts, stage = runtime.counts, runtime.stage
    stats = EngineStats(
        open_entities=runtime.open_entities(),
        in_memory=len(runtime.states),
        stored_keys=stored_keys,
        lookups=lookups,
        late_dropped=runtime.late_dropped,
        reused=counts.reused,
        rejected=Counter(counts.rejected),
        skipped=Counter(counts.skipped),
    )
    return stats if stage is None else with_stage(stats, stage)


def with_stage(stats: EngineStats, stage: AlertStage) -> EngineStats:
    """``stats`` with the alert stage's counters."""
    stats.status_totals = dict(stage.status.totals)
    stats.alerts_firing = stage.state.firing()
    stats.alerts_emitted = stage.alerts_emitted
    return stats
