"""The processing process of ``run`` (``--processing process``): the partition runtime, its
alert stage and the ``events`` columns, out of the process that answers the hooks.

The service process keeps the database (chDB allows one owner), the insert thread and the
state store; this process gets the envelopes in batches and gives back, per flush, the
rows, the ``events`` columns, the serialised state rows (under the version the service
gave) and the counters of ``/metrics``. It asks the service for the stored states of keys
its copy of the key filter may have seen (sessions evicted earlier). Protocol
(``wcs_analytics.process_store`` is the other side):

* service -> here: ``("start", meta, [(key, state text)], key filter)``,
  ``("feed", envelopes, wall ms)``, ``("advance", ms)``, ``("flush", windows, version,
  wall ms)``, ``("found", [(key, state text)])`` (a lookup's answer), ``("end",)``.
* here -> service: ``("fed", envelopes fed, [(envelope, reason)] rejected, clock,
  changed)`` after each feed and advance, ``("lookup", keys)``, ``("flushed", rows,
  events columns, state rows, evicted texts, meta, stats)``, ``("error", traceback)``.

SIGINT and SIGTERM are the service's to handle (a terminal's Ctrl-C and systemd reach the
whole group): this process ends when its pipe does, after the service's last flush.
"""

from __future__ import annotations

import contextlib
import signal
import traceback
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from events.envelope import Envelope
from processors.alert_rules import AlertRules
from processors.alert_stage import AlertStage
from processors.clock import TimerKey
from processors.runtime import PartitionRuntime
from sinks.batch import Batch
from sinks.key_filter import KeyFilter
from sinks.state_store import decode, state_rows
from wcs_analytics import gc_tuning
from wcs_analytics.engine_stats import engine_stats
from wcs_analytics.settings import Settings
from wcs_analytics.store import PART, is_open


class ProcessingChild:
    """What the processing process does with the service's messages."""

    def __init__(self, settings: Settings, rules: AlertRules, conn: Connection) -> None:
        self.conn = conn
        stage = AlertStage(rules)
        self.runtime = PartitionRuntime(settings.processor_config(), stage, persistent=True)
        self.events = Batch()
        self.keys = KeyFilter()
        self.lookups = 0
        self.inbox: deque[Any] = deque()

    def start(
        self, meta: dict[str, Any] | None, states: list[tuple[TimerKey, str]], keys: Any
    ) -> None:
        self.keys = KeyFilter.load(keys)
        if meta is not None:
            self.runtime.load_meta(meta)
        self.runtime.adopt((skey, decode(skey[0], text)) for skey, text in states)

    def feed(self, envelopes: Sequence[Envelope], wall: int | None) -> list[tuple[Envelope, str]]:
        runtime = self.runtime
        keys = runtime.keys_of(envelopes)
        unknown = runtime.unknown_keys(envelopes, keys)
        if unknown:
            runtime.adopt(self.lookup(unknown))
        rejected = runtime.feed(envelopes, wall, keys)
        if rejected:
            skip = {index for index, _ in rejected}
            kept = [env for i, env in enumerate(envelopes) if i not in skip]
            self.events.add_events(kept)
            return [(envelopes[i], reason) for i, reason in rejected]
        self.events.add_events(envelopes)
        return []

    def lookup(self, keys: set[TimerKey]) -> list[tuple[TimerKey, Any]]:
        found = ask_for_states(self.conn, self.inbox, self.keys, keys)
        self.lookups += found is not None
        return found or []

    def receive(self) -> Any:
        return self.inbox.popleft() if self.inbox else self.conn.recv()

    def flush(self, windows: bool, version: int, now: int) -> tuple[Any, ...]:
        runtime = self.runtime
        rows = runtime.flush(windows)
        checkpoint = runtime.begin_checkpoint()
        states, evicted = state_rows(checkpoint, is_open, PART, version, now)
        for row in states:
            self.keys.add(row["family"], row["key"])
        events, self.events = self.events.events, Batch()
        stats = engine_stats(runtime, len(self.keys), self.lookups)
        return rows, events, states, evicted, checkpoint.meta, stats

    def status(self, fed: int, rejected: list[tuple[Envelope, str]]) -> tuple[Any, ...]:
        return ("fed", fed, rejected, self.runtime.clock, self.runtime.changed)


def ask_for_states(
    conn: Connection, inbox: deque[Any], stored: KeyFilter, keys: set[TimerKey]
) -> list[tuple[TimerKey, Any]] | None:
    """The stored states of ``keys`` not in memory, asked of the process that owns the
    database: only the keys the filter of stored keys may hold (None: none to ask for). The
    messages that arrive before the answer wait in ``inbox``, in order."""
    might = stored.might_contain
    wanted = sorted((skey for skey in keys if might(*skey)), key=str)
    if not wanted:
        return None
    conn.send(("lookup", wanted))
    while True:
        message = conn.recv()
        if message[0] == "found":
            return [(skey, decode(skey[0], text)) for skey, text in message[1]]
        inbox.append(message)


def child_main(
    settings: Settings, rules: AlertRules, conn: Connection, inherited: Connection
) -> None:
    """The process loop. ``rules``: the alert rules, read by the service (a bad file stops
    it at start). ``inherited``: the service's end of the pipe, closed here so that this
    process sees the pipe end when the service closes its end."""
    inherited.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        child = ProcessingChild(settings, rules, conn)
        started = False
        while True:
            message = child.receive()
            kind = message[0]
            if kind == "feed":
                conn.send(child.status(len(message[1]), child.feed(message[1], message[2])))
            elif kind == "advance":
                child.runtime.advance(message[1])
                conn.send(child.status(0, []))
            elif kind == "flush":
                conn.send(("flushed", *child.flush(*message[1:])))
            elif kind == "start":
                child.start(*message[1:])
                if not started:
                    gc_tuning.tune()
                    started = True
            elif kind == "end":
                return
            else:
                raise RuntimeError(f"unknown message {kind!r}")
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the service is gone: nothing to report to
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
