"""JSON-able form of entity states (snapshots, the state table, the Kafka worker).

A state is dumped as ``{slot: value}`` over every ``__slots__`` name of its class and its
bases; orjson turns tuples into lists, ``load`` turns every list back into a tuple (stamps,
sorted status tuples, hold lists), so ``load(cls, orjson.loads(orjson.dumps(dump(s))))``
equals ``s`` slot for slot. Mutable nested values are plain dicts of tuples.
"""

from __future__ import annotations

from typing import Any, TypeVar

from processors.values import tuplify

T = TypeVar("T")


_SLOTS: dict[type, tuple[str, ...]] = {}


def slots(cls: type) -> tuple[str, ...]:
    """Every slot name of ``cls`` and its bases, sorted."""
    found = _SLOTS.get(cls)
    if found is None:
        names: set[str] = set()
        for klass in cls.__mro__:
            # a class compiled by mypyc lists its attributes in ``__mypyc_attrs__``
            names.update(getattr(klass, "__mypyc_attrs__", getattr(klass, "__slots__", ())))
        derived = set(getattr(cls, "DERIVED", ()))
        found = _SLOTS[cls] = tuple(sorted(names - derived))
    return found


def dump(state: Any) -> dict[str, Any]:
    """``{slot: value}``; a nested object (``NESTED`` of the class) dumps via ``to_json``."""
    nested = getattr(type(state), "NESTED", {})
    return {
        name: getattr(state, name).to_json() if name in nested else getattr(state, name)
        for name in slots(type(state))
    }


def load(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a state of ``cls`` from ``dump`` output (after a JSON round trip)."""
    # every state class is built as ``cls(key, t, incarnation)``; the slots are set below
    state = cls(data["key"], 0, 0)  # type: ignore[call-arg]
    for name in getattr(cls, "DERIVED", ()):
        setattr(state, name, None)
    nested = getattr(cls, "NESTED", {})
    for name in slots(cls):
        value = data[name]
        setattr(state, name, nested[name].from_json(value) if name in nested else tuplify(value))
    return state


def same(a: Any, b: Any) -> bool:
    """Slot-by-slot equality (states do not define ``__eq__``: they are mutable)."""
    return type(a) is type(b) and tuplify(dump(a)) == tuplify(dump(b))
