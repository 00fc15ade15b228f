"""The export ledger (sinks/exports/ledger.py): corrections add up exactly, ids are stable."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.exports.ledger import (
    Line,
    chain_of,
    content_digest,
    diff,
    diff_totals,
    export_id,
    totals,
)
from sinks.rating.money import ZERO

D = Decimal


def line(
    key: str,
    cost: str = "1.00",
    currency: str = "EUR",
    section: str = "rated",
    billed: int = 60,
    reason: str = "",
) -> Line:
    return Line(
        f"call:{key}",
        "call",
        (),
        "n1",
        "A",
        "",
        "",
        "outgoing",
        "ANSWERED",
        0,
        1,
        2,
        1000,
        section,
        reason,
        "r1" if section == "rated" else "",
        "r",
        "",
        currency,
        "",
        billed if section == "rated" else 0,
        ZERO,
        ZERO,
        D(cost),
    )


def test_corrections_by_hand() -> None:
    old = [line("a"), line("b", "2.00"), line("c", "0.50"), line("d", "3.00")]
    new = [
        line("a"),
        line("b", "2.50"),
        line("d", "3.00", "USD"),
        line("e", "0", "", "unrated", reason="open"),
        line("f", "0.25"),
    ]
    got = [
        (c.session_key, c.currency, c.old is not None, c.new is not None, c.cost_diff)
        for c in diff(old, new)
    ]
    assert got == [
        ("call:b", "EUR", True, True, D("0.50")),
        ("call:c", "EUR", True, False, D("-0.50")),
        ("call:d", "EUR", True, False, D("-3.00")),  # the currency changed: removed in EUR,
        ("call:d", "USD", False, True, D("3.00")),  # added in USD
        ("call:e", "", False, True, ZERO),  # a new unrated session costs nothing (yet)
        ("call:f", "EUR", False, True, D("0.25")),
    ]
    assert diff_totals(diff(old, new)) == {"EUR": D("-2.75"), "USD": D("3.00")}  # 3.75 - 6.50


def test_amounts_compare_by_value_not_scale() -> None:
    assert line("a", "0.70").fingerprint == line("a", "0.700000000000").fingerprint
    assert line("a", "0.70").fingerprint != line("a", "0.71").fingerprint
    assert diff([line("a", "0.70")], [line("a", "0.7")]) == []


def test_export_id_is_stable_and_tells_runs_apart() -> None:
    chain = chain_of("billing", 0, 10, {"group_by": ["app_key"]})
    assert chain == chain_of("billing", 0, 10, {"group_by": ["app_key"]})
    assert chain != chain_of("billing", 0, 10, {"group_by": ["node_id"]})
    assert chain != chain_of("cdr", 0, 10, {})
    digest = content_digest([line("a"), line("b")])
    assert digest == content_digest([line("b"), line("a")])  # order does not matter
    first = export_id(chain, ["r1"], digest, "")
    assert first == export_id(chain, ["r1"], digest, "")
    assert first != export_id(chain, ["r1"], digest, "abc")  # a correction is a new run
    assert first != export_id(chain, ["r2"], digest, "")


CURRENCIES = st.sampled_from(["EUR", "USD"])
LINES = st.dictionaries(
    st.sampled_from("abcdefgh"),
    st.tuples(st.decimals(0, 100, places=2).map(str), CURRENCIES, st.booleans()),
    max_size=8,
)


def _lines(spec: dict[str, tuple[str, str, bool]]) -> list[Line]:
    return [
        line(k, c, cur if rated else "", "rated" if rated else "unrated")
        for k, (c, cur, rated) in spec.items()
    ]


@settings(max_examples=300, deadline=None)
@given(LINES, LINES)
def test_corrections_are_exactly_new_minus_old(
    old_spec: dict[str, tuple[str, str, bool]], new_spec: dict[str, tuple[str, str, bool]]
) -> None:
    old, new = _lines(old_spec), _lines(new_spec)
    before, after = totals(old).cost, totals(new).cost
    expected = {c: after.get(c, ZERO) - before.get(c, ZERO) for c in before.keys() | after.keys()}
    got = diff_totals(diff(old, new))
    assert {c: got.get(c, ZERO) for c in expected} == expected
    assert set(got) <= set(expected)
    assert diff(old, old) == [] and diff(new, new) == []
