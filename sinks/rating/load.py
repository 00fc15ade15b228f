"""Load a deck directory: ``deck.toml`` (settings, periods) plus revision files.

Every other ``*.toml`` file is one revision (``[revision]`` id and ``effective_from``,
``[[rate]]`` tables, optional ``csv = [...]`` files of rate rows); every ``*.csv`` must be
named by a revision; other files are ignored. All problems are collected and raised
together as ``DeckError``, each naming file, line and field. See docs/rating.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tomllib
from pathlib import Path
from typing import Any

from sinks.rating.deck import Deck, Rate, Revision
from sinks.rating.fields import FieldError, rate_from_fields
from sinks.rating.load_settings import LineFinder, Problems, deck_settings, effective_from

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class DeckError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid rate deck:\n" + "\n".join(problems))
        self.problems = problems


def load_deck(directory: Path) -> Deck:
    """The deck in ``directory`` (its ``*.toml`` and ``*.csv`` files); DeckError."""
    if not directory.is_dir():
        raise DeckError([f"{directory}: not a directory"])
    files = sorted(p for p in directory.iterdir() if p.suffix in (".toml", ".csv"))
    return parse_deck({p.name: p.read_text("utf-8") for p in files})


def parse_deck(texts: dict[str, str]) -> Deck:
    """The deck from its files' texts by file name; DeckError listing every problem."""
    problems = Problems()
    if "deck.toml" not in texts:
        raise DeckError(["deck.toml: missing (deck settings and periods)"])
    texts = dict(sorted(texts.items()))
    deck_doc = _parse(texts["deck.toml"], "deck.toml", problems)
    periods, decimals, rounding, currency = deck_settings(deck_doc, texts["deck.toml"], problems)
    revisions, used_csv = [], set()
    for name in (n for n in texts if n.endswith(".toml") and n != "deck.toml"):
        doc = _parse(texts[name], name, problems)
        lines = LineFinder(name, texts[name])
        meta = doc.get("revision", {})
        rev_id = str(meta.get("id", ""))
        problems.check(
            bool(_ID.match(rev_id)),
            lines.at("revision", 0, "id"),
            "id",
            'each revision file needs [revision] id = "..." (letters, digits, ._-)',
        )
        start = effective_from(meta, periods.zone, lines, problems)
        rates = [
            _rate(fields, lines.at("rate", i, ""), lines, i, currency, periods.names(), problems)
            for i, fields in enumerate(doc.get("rate", []))
        ]
        for csv_name in meta.get("csv", []):
            used_csv.add(csv_name)
            if csv_name not in texts:
                problems.add(lines.at("revision", 0, "csv"), "csv", f"no file {csv_name!r}")
                continue
            rates += _csv_rates(csv_name, texts[csv_name], currency, periods.names(), problems)
        _no_duplicates(rates, rev_id, problems)
        revisions.append((start, rev_id, name, tuple(r for r in rates if r is not None)))
    for unused in sorted(n for n in texts if n.endswith(".csv") and n not in used_csv):
        problems.add(f"{unused}:1", "", "no revision lists this file in csv = [...]")
    _distinct(revisions, problems)
    if problems.items:
        raise DeckError(problems.items)
    ordered = tuple(Revision(i, s, r) for s, i, _, r in sorted(revisions))
    digest = hashlib.sha256(b"".join(n.encode() + b"\0" + t.encode() for n, t in texts.items()))
    return Deck(ordered, periods, decimals, rounding, digest.hexdigest())


def _parse(text: str, name: str, problems: Problems) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.add(f"{name}:{_toml_line(str(exc))}", "", f"not valid TOML: {exc}")
        return {}


def _toml_line(message: str) -> int:
    match = re.search(r"line (\d+)", message)
    return int(match[1]) if match else 1


def _rate(
    fields: dict[str, Any],
    where: str,
    lines: LineFinder,
    index: int,
    currency: str,
    periods: frozenset[str],
    problems: Problems,
) -> Rate | None:
    try:
        return rate_from_fields(fields, where, currency, periods)
    except FieldError as exc:
        problems.add(lines.at("rate", index, exc.field), exc.field, str(exc))
        return None


def _csv_rates(
    name: str, text: str, currency: str, periods: frozenset[str], problems: Problems
) -> list[Rate | None]:
    rows = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    rows = [(n, line) for n, line in rows if not line.lstrip().startswith("#")]
    if not rows:
        return []
    header = next(csv.reader([rows[0][1]]))
    out: list[Rate | None] = []
    for number, line in rows[1:]:
        values = next(csv.reader(io.StringIO(line)))
        if len(values) != len(header):
            problems.add(f"{name}:{number}", "", f"{len(values)} cells, header has {len(header)}")
            continue
        fields = {k.strip(): v.strip() for k, v in zip(header, values, strict=True) if v.strip()}
        try:
            out.append(rate_from_fields(fields, f"{name}:{number}", currency, periods))
        except FieldError as exc:
            problems.add(f"{name}:{number}", exc.field, str(exc))
    return out


def _no_duplicates(rates: list[Rate | None], rev_id: str, problems: Problems) -> None:
    seen: dict[tuple[str, str, str, str], str] = {}
    for rate in (r for r in rates if r is not None):
        if rate.selectors in seen:
            problems.add(
                rate.source,
                "prefix",
                f"same product, app_key, direction and prefix "
                f"as {seen[rate.selectors]} in revision {rev_id}",
            )
        seen.setdefault(rate.selectors, rate.source)


def _distinct(revisions: list[tuple[int, str, str, Any]], problems: Problems) -> None:
    for field, index in (("id", 1), ("effective_from", 0)):
        seen: dict[object, str] = {}
        for revision in revisions:
            key, name = revision[index], revision[2]
            if key in seen:
                problems.add(f"{name}:1", field, f"same {field} as {seen[key]}")
            seen.setdefault(key, name)
