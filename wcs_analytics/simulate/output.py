"""Trace -> envelopes (as ingest would publish them) and NDJSON files for ``replay``.

Envelope times are the trace's arrival times, so the truth applies to a replay of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import orjson

from events.catalog import is_valid_name, resolve
from events.envelope import Envelope, IdSource, encode, make
from wcs_analytics.simulate.model import Trace

SECRET_KEYS: Final = frozenset({"sippassword", "authtoken", "token"})
Redact = Callable[[dict[str, Any]], dict[str, Any]]


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k.lower() not in SECRET_KEYS}
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def redact_secrets(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` without sipPassword, authToken, token (any depth, any case).

    The default for ``to_envelopes``; the service passes ingest's own redactor instead.
    """
    result: dict[str, Any] = _strip(body)
    return result


def to_envelopes(
    trace: Trace, ids: Callable[[], str] | None = None, redact: Redact = redact_secrets
) -> Iterator[Envelope]:
    """One envelope per hook, in arrival order, ``received_at`` = the hook's arrival time.

    ``ids`` defaults to a deterministic source (``sim<seed>-<n>``); ``redact`` must return a
    new dict and never mutate its argument (bodies are shared with retries).
    """
    next_id = ids if ids is not None else IdSource(f"sim{trace.config.seed}")
    for received_at, name, body in trace.hooks:
        if not is_valid_name(name):
            raise ValueError(f"simulated hook name {name!r} is not a valid method name")
        yield make(resolve(name), redact(body), received_at, next_id())


def ndjson_lines(
    trace: Trace, ids: Callable[[], str] | None = None, redact: Redact = redact_secrets
) -> Iterator[bytes]:
    """Encoded envelopes, each followed by a newline."""
    for envelope in to_envelopes(trace, ids, redact):
        yield encode(envelope) + b"\n"


def truth_path(path: Path) -> Path:
    return path.with_name(path.name + ".truth.json")


def write_ndjson(
    trace: Trace,
    path: Path,
    ids: Callable[[], str] | None = None,
    redact: Redact = redact_secrets,
) -> int:
    """Write the envelopes to ``path`` and the truth to ``<path>.truth.json``; returns the
    number of envelopes written. Overwrites both files."""
    count = 0
    with path.open("wb") as out:
        for line in ndjson_lines(trace, ids, redact):
            out.write(line)
            count += 1
    truth_path(path).write_bytes(orjson.dumps(trace.truth, option=orjson.OPT_INDENT_2))
    return count
