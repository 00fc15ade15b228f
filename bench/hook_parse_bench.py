"""The hook path with exact big-integer parsing vs plain ``orjson.loads``, in one process.

``HookHandler.handle`` (auth off, parse, redact, envelope, in-memory bus) on an 863-byte
StreamStatusEvent, alternating the parser the handler uses: ``events.jsonbody.loads`` (the
code) and ``orjson.loads`` (the baseline without the big-integer check). Also the two
parsers alone. Median of ``--rounds`` rounds of ``--number`` calls, in microseconds per call.
A script, not a test: numbers are written down (docs/metrics.md), never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from events import jsonbody  # noqa: E402 -- after the sys.path fix above
from events.bus import InMemoryBus  # noqa: E402
from events.envelope import IdSource  # noqa: E402
from ingest import hooks  # noqa: E402
from ingest.config import IngestConfig  # noqa: E402
from ingest.metrics import HookMetrics  # noqa: E402

BODY = orjson.dumps(
    {
        "nodeId": "d2hxZz5rGd2kk9X1YVqtZ8mnJpzBrBB@95.191.130.39",
        "appKey": "defaultApp",
        "sessionId": "04cfeb85-cf9c-49aa-8144-022dfc0cdd0b",
        "mediaSessionId": "c43a28b7-9a4d-45f8-a010-57b959a22755",
        "name": "e6dcaedd-1234",
        "published": True,
        "hasVideo": True,
        "hasAudio": True,
        "status": "PUBLISHING",
        "audioCodec": "PCMA",
        "videoCodec": "VP8",
        "record": False,
        **{k: 0 for k in ("width", "height", "bitrate", "minBitrate", "maxBitrate", "quality")},
        "history": False,
        "gop": 0,
        "fps": 0,
        "audioBitrate": 0,
        "codecImpl": "",
        "transport": "UDP",
        "cvoExtension": False,
        "createDate": 1664260776957,
        "mediaType": "publish",
        "audioState": {"muted": False},
        "videoState": {"muted": False},
        "mediaProvider": "WebRTC",
        "custom": {"a": "b" * 200},
    }
)


def _time(call: Callable[[], Any], number: int) -> float:
    started = time.perf_counter()
    for _ in range(number):
        call()
    return (time.perf_counter() - started) / number * 1e6


async def main(rounds: int, number: int) -> None:
    bus = InMemoryBus(number * 4, lambda envelope: None)
    handler = hooks.HookHandler(IngestConfig(), bus, HookMetrics(), lambda: 1, IdSource())
    results: dict[str, list[float]] = {"handle exact": [], "handle orjson": []}
    results |= {"loads exact": [], "loads orjson": []}
    for _ in range(rounds):
        for name, parser in (("exact", jsonbody.loads), ("orjson", orjson.loads)):
            setattr(hooks, "loads", parser)  # noqa: B010 -- the A/B switch of the parser
            results[f"handle {name}"].append(
                _time(lambda: handler.handle("StreamStatusEvent", BODY, ()), number)
            )
            while bus.depth():
                bus.get_nowait()
            results[f"loads {name}"].append(_time(partial(parser, BODY), number))
    setattr(hooks, "loads", jsonbody.loads)  # noqa: B010
    print(f"{len(BODY)}-byte body, median of {rounds} rounds x {number} calls, us per call")
    for name, values in results.items():
        print(f"  {name:14s} {statistics.median(values):6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.number))
