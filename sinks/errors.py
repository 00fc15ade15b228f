"""The sink's error taxonomy, translated once at the database boundary.

``classify`` maps whatever an insert raised (a clickhouse_connect exception, a
transport ``OSError`` or the ``ValueError``/``TypeError`` the driver raises
while serializing a bad value) to exactly one of:

- ``TransientError``: network, timeout, overload -- retried with backoff.
- ``PermanentError``: the rows themselves are bad -- dead-lettered, never retried.
- ``ConfigError``: the deployment is wrong (bad DSN, credentials, missing
  table: run migrate) -- neither retried nor dead-lettered; rows stay pending.

A server error whose code is in none of the lists counts as transient: the
retry is bounded and the rows stay pending, so nothing is dead-lettered on a guess.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final


class SinkError(Exception):
    """Base of everything sinks raises on purpose."""


class ConfigError(SinkError):
    """Bad DSN, credentials or schema; says what to fix. Never retried."""


class Backpressure(SinkError):
    """The writer's pending buffer is full: flush (or slow down) before adding more."""

    def __init__(self, pending: int, incoming: int, limit: int) -> None:
        super().__init__(f"{pending} rows pending + {incoming} new would exceed the bound {limit}")
        self.pending = pending
        self.incoming = incoming
        self.limit = limit


class TransientError(SinkError):
    """Worth retrying later: network, timeout, server overloaded."""


class PermanentError(SinkError):
    """The data was rejected; retrying the same rows cannot succeed."""


# ClickHouse server error codes (names checked with errorCodeToName in chDB)
TRANSIENT_CODES: Final = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        173,  # CANNOT_ALLOCATE_MEMORY
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        225,  # NO_ZOOKEEPER
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        279,  # ALL_CONNECTION_TRIES_FAILED
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        745,  # SERVER_OVERLOADED
        999,  # KEEPER_EXCEPTION
    }
)
CONFIG_CODES: Final = frozenset(
    {
        16,  # NO_SUCH_COLUMN_IN_TABLE
        60,  # UNKNOWN_TABLE
        81,  # UNKNOWN_DATABASE
        164,  # READONLY
        192,  # UNKNOWN_USER
        193,  # WRONG_PASSWORD
        194,  # REQUIRED_PASSWORD
        497,  # ACCESS_DENIED
        516,  # AUTHENTICATION_FAILED
    }
)
DATA_CODES: Final = frozenset(
    {6, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 131, 321, 349}
)  # CANNOT_PARSE_*, TYPE_MISMATCH, INCORRECT_DATA, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE, ...

# raised by the driver while serializing a value that does not fit its column
_SERIALIZATION_ERRORS: Final = (ValueError, TypeError, AttributeError, OverflowError, struct.error)


def classify(exc: BaseException) -> SinkError | None:
    """The taxonomy error for ``exc`` (the caller raises it ``from exc``).

    None for anything else (a bug, KeyboardInterrupt): the caller re-raises it unchanged.
    """
    if isinstance(exc, SinkError):
        return exc
    # here, not at the top: the driver's package takes ~0.1 s to import, and a CLI command
    # that never talks to ClickHouse (``--help``, ``simulate``) should not wait for it
    from clickhouse_connect.driver import exceptions as ch

    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ch.Error) and exc.code is not None:
        if exc.code in CONFIG_CODES:
            return ConfigError(message)
        if exc.code in DATA_CODES:
            return PermanentError(message)
        return TransientError(message)
    if isinstance(exc, ch.DataError):
        return PermanentError(message)
    if isinstance(exc, ch.ProgrammingError):  # client-side: unknown column, closed client
        return ConfigError(message)
    if isinstance(exc, ch.Error | OSError):  # OperationalError = transport failure
        return TransientError(message)
    if isinstance(exc, _SERIALIZATION_ERRORS):
        return PermanentError(message)
    return None


@contextmanager
def translated(context: str = "") -> Iterator[None]:
    """Re-raise what the block raises as its taxonomy error (``context`` prefixed), chained."""
    try:
        yield
    except SinkError:
        raise
    except Exception as exc:
        error = classify(exc)
        if error is None:
            raise
        if context:
            raise type(error)(f"{context}: {error}") from exc
        raise error from exc
