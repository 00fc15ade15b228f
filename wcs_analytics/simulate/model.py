"""The pure, seeded scenario generator: ``generate(SimConfig) -> Trace``.

Everything is drawn from one ``random.Random(cfg.seed)`` in a fixed order and the clock is
``cfg.start_ms``: the same config always yields the same hooks and truth.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from wcs_analytics.simulate import calls, connections, messages, streams
from wcs_analytics.simulate.config import LATE_WINDOW_MS, Hook, SimConfig
from wcs_analytics.simulate.ids import mark, node_id, outcome_deck, uuid4
from wcs_analytics.simulate.lifecycle import Context, Lifecycle
from wcs_analytics.simulate.noise import duplicate, reorder
from wcs_analytics.simulate.truth import build_truth


@dataclass(frozen=True, slots=True)
class Trace:
    """``hooks`` sorted by arrival; ``truth`` as built by ``truth.build_truth``.

    Bodies are shared between a hook and its retries: treat them as read-only.
    """

    config: SimConfig
    hooks: list[Hook]
    truth: dict[str, Any]
    lifecycles: tuple[Lifecycle, ...]


def _deck(rng: random.Random, cfg: SimConfig, n: int, weights: dict[str, float]) -> list[str]:
    return outcome_deck(rng, n, weights, ("KA_STOP",), cfg.missing_end_rate)


def _entities(rng: random.Random, cfg: SimConfig, contexts: list[Context]) -> list[Lifecycle]:
    rate = cfg.missing_end_rate
    out = outcome_deck(rng, cfg.connections, connections.OUTCOMES, connections.OPEN, rate)
    lcs = [connections.build(rng, ctx, o) for ctx, o in zip(contexts, out, strict=False)]
    out = outcome_deck(rng, cfg.calls, calls.OUTCOMES, calls.OPEN, rate)
    lcs += [calls.build(rng, rng.choice(contexts), o) for o in out]
    out = _deck(rng, cfg, cfg.publishers, streams.PUBLISHER_OUTCOMES)
    mark(rng, out, "UNPUBLISHED", "UNPUBLISHED_GAP", cfg.gap_rate)
    pubs = [streams.build_publisher(rng, rng.choice(contexts), cfg, o) for o in out]
    names = [p.steps[0].body["name"] for p in pubs] or ["stream-1"]
    out = _deck(rng, cfg, cfg.viewers, streams.VIEWER_OUTCOMES)
    mark(rng, out, "STOPPED", "STOPPED_GAP", cfg.gap_rate)
    lcs += pubs + [
        streams.build_viewer(rng, rng.choice(contexts), cfg, o, rng.choice(names)) for o in out
    ]
    out = outcome_deck(rng, cfg.messages, messages.MESSAGE_OUTCOMES, (), 0.0)
    lcs += [messages.build_message(rng, rng.choice(contexts), o) for o in out]
    out = outcome_deck(rng, cfg.data_ops, messages.DATA_OUTCOMES, (), 0.0)
    lcs += [messages.build_data(rng, rng.choice(contexts), o) for o in out]
    lcs += [messages.build_error(rng, rng.choice(contexts)) for _ in range(cfg.errors)]
    return lcs


def _place(rng: random.Random, lc: Lifecycle, cfg: SimConfig) -> None:
    """Shift onto the trace clock so the entity ends by ``end_ms``; ``early`` ones leave a
    tail longer than the keep-alive timeout, ``late`` ones start within 4 min of the end."""
    if lc.placement == "fixed" or not lc.steps:
        return
    lo, hi = 0, cfg.duration_ms - lc.span
    if lc.placement == "early":
        hi -= cfg.tail_ms
    elif lc.placement == "late":
        lo = cfg.duration_ms - LATE_WINDOW_MS
    if hi < lo:
        raise ValueError(f"{lc.kind} {lc.outcome} spans {lc.span} ms: duration_ms too short")
    lc.shift(cfg.start_ms + rng.randint(lo, hi) - lc.steps[0].at)


def _flatten(lifecycles: list[Lifecycle]) -> list[Hook]:
    """All hooks in arrival order; ties keep generation order."""
    ordered = [
        (step.at, seq, step)
        for seq, step in enumerate(s for lc in lifecycles for s in (*lc.steps, *lc.retries))
    ]
    ordered.sort(key=lambda item: (item[0], item[1]))
    return [(at, step.method, step.body) for at, _, step in ordered]


def generate(cfg: SimConfig) -> Trace:
    """A trace of WCS hook traffic with its ground truth; pure in ``cfg``."""
    rng = random.Random(cfg.seed)
    nodes = [node_id(rng, f"10.0.{i // 250}.{10 + i % 250}") for i in range(cfg.nodes)]
    contexts = [
        Context(rng.choice(nodes), rng.choice(cfg.app_keys), uuid4(rng))
        for _ in range(max(1, cfg.connections))
    ]
    lifecycles = _entities(rng, cfg, contexts)
    for lc in lifecycles:
        _place(rng, lc, cfg)
    lifecycles += [messages.build_stats(rng, node, cfg) for node in nodes]
    noise = {
        "reorders": reorder(rng, lifecycles, cfg.reorder_rate),
        "retries": duplicate(rng, lifecycles, cfg.duplicate_rate),
    }
    hooks = _flatten(lifecycles)
    truth = build_truth(lifecycles, cfg, hooks[-1][0], noise | {"hooks": len(hooks)})
    return Trace(cfg, hooks, truth, tuple(lifecycles))
