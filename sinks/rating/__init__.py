"""Rating: price the sessions this project computes with a versioned rate deck.

Pure and IO-free except ``load`` (reads the deck files). ``rate(session, deck)`` turns one
closed session into a ``RatedLine`` or an ``Unrated`` with its reason; money is exact
``Decimal`` (``money.CONTEXT`` traps any inexact step) rounded once per session.
See docs/rating.md.
"""
