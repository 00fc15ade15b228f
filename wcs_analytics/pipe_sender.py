"""Writes the messages for another process to its pipe, in order, from a thread.

If the process that reads the other side's messages also wrote its own, a message larger
than the pipe's buffer (a large stored state, a batch of envelopes) would block it while the
other side is blocked writing its own large message back: each waiting for the other to
read, for ever. A thread of its own also keeps the writer's owner (the event loop of ``run``)
from waiting on a full pipe.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

_STOP = object()


class PipeSender:
    """``on_error``: called (in the thread) with the exception when a message cannot be sent
    for another reason than the other side being gone (it cannot be pickled); the thread
    ends, as the protocol cannot go on without that message."""

    def __init__(
        self, conn: Connection, name: str, on_error: Callable[[BaseException], None] | None = None
    ) -> None:
        self.conn, self.on_error = conn, on_error
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, message: Any) -> None:
        self.queue.put(message)

    def end(self) -> None:
        """Send what is queued, then end the thread (``thread.join`` waits for that)."""
        self.queue.put(_STOP)

    def _run(self) -> None:
        while (message := self.queue.get()) is not _STOP:
            try:
                self.conn.send(message)
            except OSError:  # the other side is gone: its pipe reads EOF, and that is reported
                return
            except Exception as exc:
                log.exception("a message for %s could not be sent", self.thread.name)
                if self.on_error is not None:
                    self.on_error(exc)
                return
