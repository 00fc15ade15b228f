"""Callee numbers and rate prefixes, normalised the same way; longest prefix wins.

``normalise`` keeps what identifies the destination: ``sip:+44 20 7946 0000@pbx.example;
user=phone`` -> ``442079460000``. In order: a ``sip:``/``sips:``/``tel:`` scheme is dropped,
then everything from ``@`` (the domain) and from ``;`` (URI parameters), then spaces and the
visual separators ``-``, ``.``, ``(``, ``)``; a leading ``+`` or ``00`` (international
prefix) is dropped. A national number (``0 20 ...``) is left as written: give it rates of
its own. A name that is not a number (``alice``) stays as text, lower-cased, and only
matches the empty prefix or a rate whose prefix is that text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SCHEME = re.compile(r"^(?:sips?|tel):", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s\-.()]")


def normalise(number: str) -> str:
    text = _SCHEME.sub("", number.strip())
    text = text.split("@", 1)[0].split(";", 1)[0]
    text = _SEPARATORS.sub("", text).lower()
    if text.startswith("+"):
        return text[1:]
    if text.startswith("00") and text.isdigit():
        return text[2:]
    return text


def longest(number: str, prefixes: Iterable[str]) -> str | None:
    """The longest of ``prefixes`` (already normalised) that ``number`` starts with."""
    best: str | None = None
    for prefix in prefixes:
        if number.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best
