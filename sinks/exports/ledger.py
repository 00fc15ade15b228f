"""What an export run billed, per session, and how two runs differ. Pure, no IO.

A ``Line`` is one session as an export run saw and priced it (rated or unrated). Runs
of the same kind, period and parameters form a **chain**; the run's export id is derived
from the chain, the deck revisions used, the content digest of its lines and the run it
corrects, so re-running the same thing on the same data gives the same id. ``diff`` gives
the corrections between two runs: one row per changed session (per currency if its
currency changed), ``cost_diff = new - old``, so the corrections of a currency add up to
exactly the new total minus the old one. See docs/rating.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, field, replace
from decimal import Decimal

import orjson

from sinks.rating.money import CONTEXT, ZERO
from sinks.rating.rate import RatedLine, Unrated


@dataclass(frozen=True, slots=True)
class Line:
    session_key: str  # "call:<call_id>", "stream:<media_session_id>", "message:<message_id>",
    # plus "#<incarnation>" for a reused id
    product: str
    group_keys: tuple[str, ...]
    node_id: str
    app_key: str
    caller: str
    callee: str
    direction: str
    disposition: str
    created_ms: int
    started_ms: int | None
    ended_ms: int | None
    duration_ms: int
    section: str  # rated or unrated
    reason: str = ""
    deck_revision: str = ""
    rate_id: str = ""
    prefix: str = ""
    currency: str = ""
    tiers: str = ""  # "tier/period=seconds ..."
    billed_seconds: int = 0
    attempt_fee: Decimal = ZERO
    connect_fee: Decimal = ZERO
    cost: Decimal = ZERO
    incarnation: int = 0  # a reused call or stream id: the session_key ends in #<incarnation>

    @property
    def fingerprint(self) -> str:
        # amounts by value, not by scale: 0.70 from a deck and 0.700000000000 read back agree
        values = [f"{v.normalize():f}" if isinstance(v, Decimal) else v for v in astuple(self)]
        return hashlib.sha256(orjson.dumps(values)).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Totals:
    sessions: int = 0
    unrated: int = 0
    billed_seconds: int = 0
    cost: dict[str, Decimal] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        cost = {currency: str(amount) for currency, amount in sorted(self.cost.items())}
        return {"sessions": self.sessions, "unrated": self.unrated,
                "billed_seconds": self.billed_seconds, "cost": cost}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Correction:
    session_key: str
    currency: str
    old: Line | None  # None: the session is new in this run (or changed currency)
    new: Line | None  # None: the session left this run (or changed currency)
    cost_diff: Decimal


def line_of(base: Line, result: RatedLine | Unrated) -> Line:
    """``base`` (the session's facts, section unrated) completed with its rating."""
    if isinstance(result, Unrated):
        return replace(base, section="unrated", reason=result.reason)
    chosen = result.rate
    tiers = " ".join(f"{tier}/{period}={seconds}" for tier, period, seconds in result.usage)
    return replace(
        base, section="rated", deck_revision=result.revision_id, rate_id=chosen.rate_id,
        prefix=chosen.prefix, currency=chosen.currency, tiers=tiers,
        billed_seconds=result.billed_seconds if base.product != "message" else 0,
        attempt_fee=result.attempt_fee, connect_fee=result.connect_fee, cost=result.cost,
    )  # fmt: skip


def content_digest(lines: Iterable[Line]) -> str:
    return hashlib.sha256(
        "\n".join(sorted(line.fingerprint for line in lines)).encode()
    ).hexdigest()


def totals(lines: Iterable[Line]) -> Totals:
    sessions = unrated = billed = 0
    cost: dict[str, Decimal] = {}
    for line in lines:
        sessions += 1
        unrated += line.section == "unrated"
        billed += line.billed_seconds
        if line.section == "rated":
            cost[line.currency] = CONTEXT.add(cost.get(line.currency, ZERO), line.cost)
    return Totals(sessions, unrated, billed, cost)


def chain_of(kind: str, from_ms: int, to_ms: int, parameters: dict[str, object]) -> str:
    """The key runs are corrected under: kind, period and parameters (not the deck)."""
    text = orjson.dumps([kind, from_ms, to_ms, parameters], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:32]


def export_id(chain: str, revisions: Sequence[str], digest: str, corrects: str) -> str:
    text = orjson.dumps([chain, sorted(revisions), digest, corrects])
    return hashlib.sha256(text).hexdigest()[:24]


def diff(old: Iterable[Line], new: Iterable[Line]) -> list[Correction]:
    """Changed sessions, by session key then currency; unchanged ones are left out."""
    before = {line.session_key: line for line in old}
    after = {line.session_key: line for line in new}
    out: list[Correction] = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was is not None and now is not None and was.fingerprint == now.fingerprint:
            continue
        if was is not None and now is not None and _money(was) and _money(now) \
                and was.currency != now.currency:  # fmt: skip
            out.append(Correction(key, was.currency, was, None, -was.cost))
            out.append(Correction(key, now.currency, None, now, now.cost))
            continue
        currency = (now.currency if now is not None and _money(now) else "") or (
            was.currency if was is not None and _money(was) else ""
        )
        old_cost = was.cost if was is not None and _money(was) else ZERO
        new_cost = now.cost if now is not None and _money(now) else ZERO
        out.append(Correction(key, currency, was, now, CONTEXT.subtract(new_cost, old_cost)))
    return out


def _money(line: Line) -> bool:
    return line.section == "rated"


def diff_totals(corrections: Iterable[Correction]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for correction in corrections:
        if correction.currency:
            out[correction.currency] = CONTEXT.add(
                out.get(correction.currency, ZERO), correction.cost_diff
            )
    return dict(sorted(out.items()))
