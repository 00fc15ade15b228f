"""Hand-made rows for the export tests: the period is [M0, M0 + 10 min) = [at(0), at(600)).

Times are seconds after M0 (2023-11-14 22:14:00 UTC). ``FIRST`` holds superseded versions;
``LATER`` is written twice (a replay), so nothing may count twice.
"""

from __future__ import annotations

from typing import Any

from events.tables import Row
from tests.integration.kpi_rows import at, call, message, row, stream

FROM, TO = at(0), at(600)
T1 = '{"tenant":"t1"}'


def _with(row: Row, **values: Any) -> Row:
    return row[0], row[1] | values


def talk(call_id: str, version: int, created: float, answered: float | None, ended: float | None,
         *, app: str = "A", caller: str = "", session: str = "", custom: str = "",
         ringing: float | None = None, info: str = "") -> Row:  # fmt: skip
    base = call(
        call_id,
        version,
        at(created),
        app=app,
        ringing=None if ringing is None else at(ringing),
        answered=None if answered is None else at(answered),
        ended=None if ended is None else at(ended),
        disposition="ANSWERED" if answered is not None else "BUSY",
        info=info,
    )
    status = "FINISH" if ended is not None else "ESTABLISHED"
    closed_by = "event" if ended is not None else ""
    values = {"caller": caller, "session_id": session, "custom": custom}
    return _with(base, status=status, closed_by=closed_by, **values)


def media(msid: str, version: int, kind: str, name: str, started: float | None,
          ended: float | None, *, node: str = "n1", final: str = "", session: str = "",
          custom: str = "", created: float | None = None, info: str = "") -> Row:  # fmt: skip
    first = created if created is not None else started
    assert first is not None
    base = stream(
        msid,
        version,
        at(first),
        kind,
        node=node,
        started=None if started is None else at(started),
        ended=None if ended is None else at(ended),
        final_status=final,
    )
    provider = "HLS" if kind == "hls" else "WebRTC"
    closed_by = "" if ended is None else ("event" if final else "timeout")
    values = {"name": name, "session_id": session, "custom": custom, "info": info}
    return _with(base, media_provider=provider, closed_by=closed_by, **values)


def sms(message_id: str, version: int, sent: float | None, *, app: str = "A", sender: str = "",
        session: str = "", received: float | None = None) -> Row:  # fmt: skip
    times = {"sent_at": at(sent)} if sent is not None else {"received_at": at(received or 0)}
    first = sent if sent is not None else received or 0
    status = "SENT" if sent is not None else "RECEIVED"
    row = message(message_id, version, at(first), status, app=app, **times)
    return _with(row, sender=sender, session_id=session)


def connection(session: str, version: int, sip_login: str, custom: str = "") -> Row:
    return row(
        "connections",
        node_id="n1",
        session_id=session,
        app_key="A",
        sip_login=sip_login,
        custom=custom,
        created_at=at(-300),
        last_event_at=at(-300),
        version=version,
    )


FIRST: list[Row] = [
    talk("c1", 1, 0, 5, None, caller="alice", session="s-alice", custom=T1),
    call("c7", 1, at(545), ringing=at(546), disposition="IN_PROGRESS"),
    media("p1", 1, "publish", "cam", 0, None, session="s-alice", custom=T1),
    sms("m1", 1, 5, sender="alice", session="s-alice"),
    connection("s-alice", 1, ""),
]

LATER: list[Row] = [
    # billed calls: c1 61 s, c2 0 s, c3 1.5 s, c5 120 s (answered before the period), c8 ends
    # exactly at from; c4 busy; c9 ends 1 ms before from; c6 ends exactly at to and c7 is
    # still open (both open at to); c10 is answered exactly at to (neither)
    talk("c1", 2, 0, 5, 66, caller="alice", session="s-alice", custom=T1),
    talk("c2", 1, 8, 10, 10, caller="alice", session="s-alice", custom=T1),
    talk(
        "c3",
        1,
        18,
        20,
        21.5,
        caller="bob",
        session="s-bob",
        custom='{"tenant":7}',
        ringing=19,
        info="Normal call clearing",
    ),
    talk("c4", 1, 25, None, 30, caller="bob", session="s-bob"),
    talk("c5", 1, -100, -90, 30, caller="bob", session="s-bob"),
    talk("c6", 1, 495, 500, 600, caller="carol", session="s-carol"),
    talk("c7", 2, 545, 550, None, caller="carol", session="s-carol"),
    talk("c8", 1, -40, -30, 0, app="B", caller="dave", session="s-dave"),
    talk("c9", 1, -40, -30, -0.001, app="B", caller="dave", session="s-dave"),
    talk("c10", 1, 590, 600, None, caller="carol", session="s-carol"),
    # streams of A: p1 [0, 300) on cam with viewers v1 [10, 70) and v2 [200, open); v3 starts
    # at p1's end, v5 ends at its start, v4 is on n2, v6 never played; p2 [100, 160) on live,
    # closed by timeout, with viewer v7; p3 and v8 are open at to (v8 ends exactly at to)
    media("p1", 2, "publish", "cam", 0, 300, final="UNPUBLISHED", session="s-alice", custom=T1),
    media("v1", 1, "play", "cam", 10, 70, final="STOPPED"),
    media("v2", 1, "hls", "cam", 200, None),
    media("v3", 1, "play", "cam", 300, 350, final="STOPPED"),
    media("v4", 1, "play", "cam", 50, 60, node="n2", final="STOPPED"),
    media("v5", 1, "play", "cam", -20, 0, final="STOPPED"),
    media("v6", 1, "play", "cam", None, 40, created=39, final="FAILED", info="Stream not found"),
    media("p2", 1, "publish", "live", 100, 160),
    media("v7", 1, "play", "live", 150, 155, final="STOPPED"),
    media("p3", 1, "publish", "late", 590, None),
    media("v8", 1, "play", "other", 590, 600, final="STOPPED"),
    # messages: m1 and m7 (exactly at from) sent by alice, m5 by dave (B); m4 1 ms before
    # from, m6 exactly at to, m2 after; m3 only received
    sms("m1", 2, 5, sender="alice", session="s-alice"),
    sms("m7", 1, 0, sender="alice", session="s-alice"),
    sms("m5", 1, 100, app="B", sender="dave", session="s-dave"),
    sms("m4", 1, -0.001, sender="alice"),
    sms("m6", 1, 600, sender="alice"),
    sms("m2", 1, 700, sender="alice"),
    sms("m3", 1, None, received=50),
    connection("s-alice", 2, "alice-sip", T1),
    connection("s-bob", 1, "bob-sip"),
    connection("s-dave", 1, "dave-sip"),
]
