"""Seeded identifiers and outcome decks; every function draws only from the given rng."""

from __future__ import annotations

import random
import string
import uuid

ALNUM = string.ascii_letters + string.digits
WORDS = ("hello", "ok", "meeting", "at", "five", "call", "me", "back", "thanks", "see", "you")


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def secret(rng: random.Random, nbytes: int = 12) -> str:
    return f"{rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"


def node_id(rng: random.Random, ip: str) -> str:
    """WCS node id: 32 random alphanumerics, '@', the server IP."""
    return "".join(rng.choice(ALNUM) for _ in range(32)) + "@" + ip


def phrase(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))


def outcome_deck(
    rng: random.Random,
    n: int,
    weights: dict[str, float],
    open_outcomes: tuple[str, ...],
    missing_end_rate: float,
) -> list[str]:
    """``n`` outcomes, shuffled: ``round(n * missing_end_rate)`` open ones (at least one when
    the rate is positive and n >= 2), cycled over ``open_outcomes``; the rest cover every
    key of ``weights`` once when there is room, then weighted draws."""
    n_open = round(n * missing_end_rate)
    if missing_end_rate > 0 and n >= 2:
        n_open = max(1, n_open)
    n_open = min(n_open, n) if open_outcomes else 0
    deck = [open_outcomes[i % len(open_outcomes)] for i in range(n_open)]
    names = list(weights)
    rest = n - n_open
    deck += names[:rest]
    if rest > len(names):
        deck += rng.choices(names, weights=[weights[k] for k in names], k=rest - len(names))
    rng.shuffle(deck)
    return deck


def mark(rng: random.Random, deck: list[str], source: str, target: str, rate: float) -> None:
    """Turn ``round(count * rate)`` (at least one when rate > 0) ``source`` entries of the
    deck into ``target``, in place."""
    where = [i for i, outcome in enumerate(deck) if outcome == source]
    k = min(len(where), max(1 if rate > 0 else 0, round(len(where) * rate)))
    for index in rng.sample(where, k):
        deck[index] = target
