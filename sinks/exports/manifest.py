"""The manifest of a rated export run: its id, status and control totals (docs/rating.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from sinks.exports import ledger as lg
from sinks.exports.ledger_store import RunRecord
from sinks.rating.money import fmt


@dataclass(frozen=True, slots=True)
class RatedRun:
    record: RunRecord
    totals: lg.Totals
    previous: lg.Totals | None = None  # the corrected run's totals (status correction)
    corrections: list[lg.Correction] = field(default_factory=list)


def costs_json(total: lg.Totals, decimals: int) -> dict[str, str]:
    return {currency: fmt(amount, decimals) for currency, amount in sorted(total.cost.items())}


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")


def manifest(run: RatedRun, fmt_name: str | None = None) -> dict[str, object]:
    """Control totals of a run (written next to the file; see docs/rating.md)."""
    r, decimals = run.record, run.record.decimals
    out: dict[str, object] = {
        "export_id": r.export_id, "kind": r.kind, "status": r.status, "corrects": r.corrects,
        "period": {"from": _iso(r.from_ms), "to": _iso(r.to_ms)},
        "parameters": orjson.loads(r.parameters),
        "deck": {"digest": r.deck_digest, "revisions": list(r.deck_revisions)},
        "created_at": _iso(r.created_ms),
        "totals": {"rows": r.rows} | run.totals.as_json() | {"cost": orjson.loads(r.totals)},
    }  # fmt: skip
    if fmt_name is not None:
        out["format"] = fmt_name
    if run.previous is not None:
        previous = run.previous.as_json() | {"cost": costs_json(run.previous, decimals)}
        diffs = {c: fmt(a, decimals) for c, a in lg.diff_totals(run.corrections).items()}
        out["previous_totals"] = previous
        out["correction"] = {"lines": len(run.corrections), "cost_diff": diffs}
    return out
