"""One simulated entity: its context, the hooks it produces in lifecycle order, its retries.

Builders append steps with times relative to the entity's start; ``model`` shifts them onto
the trace clock, then ``noise`` swaps arrival times and adds retries. Ground truth reads the
steps (lifecycle order plus final arrival times), never the flattened hook list.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Context:
    """The WCS session an entity belongs to."""

    node_id: str
    app_key: str
    session_id: str

    def body(self, **fields: Any) -> dict[str, Any]:
        return {
            "nodeId": self.node_id,
            "appKey": self.app_key,
            "sessionId": self.session_id,
            **fields,
        }


@dataclass(slots=True)
class Step:
    """One hook of an entity. ``role`` names its lifecycle meaning (e.g. ``hold``, ``unhold``)."""

    at: int
    method: str
    body: dict[str, Any]
    role: str = ""

    @property
    def status(self) -> str:
        return str(self.body.get("status") or "")


@dataclass(slots=True)
class Lifecycle:
    """``placement``: ``any``; ``early`` (traffic continues past its keep-alive timeout);
    ``late`` (created close enough to the end that no set-up timeout elapses)."""

    kind: str
    key: str
    ctx: Context
    outcome: str
    placement: str = "any"
    steps: list[Step] = field(default_factory=list)
    retries: list[Step] = field(default_factory=list)
    clock: int = 0

    def add(
        self, rng: random.Random, delay: tuple[int, int], method: str, role: str = "", **fields: Any
    ) -> Step:
        """Append a hook ``delay`` (inclusive ms range, >= 1) after the previous one."""
        self.clock += rng.randint(max(1, delay[0]), max(1, delay[1]))
        step = Step(self.clock, method, self.ctx.body(**fields), role)
        self.steps.append(step)
        return step

    @property
    def span(self) -> int:
        return self.steps[-1].at - self.steps[0].at if self.steps else 0

    def shift(self, offset: int) -> None:
        """Move onto the trace clock; ``createDate`` (the one time WCS puts in a body) too."""
        for step in self.steps:
            step.at += offset
            if "createDate" in step.body:
                step.body["createDate"] += offset

    def first(self, *statuses: str) -> int | None:
        """Earliest arrival of a hook carrying one of ``statuses`` (retries are never earlier)."""
        times = [s.at for s in self.steps if s.status in statuses]
        return min(times) if times else None

    def first_method(self, *methods: str) -> int | None:
        times = [s.at for s in self.steps if s.method in methods]
        return min(times) if times else None

    def last_at(self) -> int:
        return max(s.at for s in (*self.steps, *self.retries))
