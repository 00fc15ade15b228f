"""The sender thread of a pipe to another process (``replay --jobs`` parts, `run`'s processing
process)."""

from __future__ import annotations

import multiprocessing as mp
import threading

from wcs_analytics.pipe_sender import PipeSender


def test_a_message_that_cannot_be_sent_is_reported_not_lost_silently() -> None:
    mine, theirs = mp.Pipe()
    failed: list[BaseException] = []
    sender = PipeSender(mine, "test-send", failed.append)
    sender.put(("ok", 1))
    sender.put(("bad", threading.Lock()))  # cannot be pickled
    sender.thread.join(timeout=5)
    assert theirs.recv() == ("ok", 1)
    assert not sender.thread.is_alive() and isinstance(failed[0], TypeError)
    mine.close()
    theirs.close()
