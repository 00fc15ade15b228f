"""Message, data and diagnostic lifecycles.

Messages (``id`` keyed): sendMessage then MessageStatusEvent ACCEPTED | FAILED, IMDN_DELIVERED
(>= 1.5 s after ACCEPTED, so a retried ACCEPTED never arrives after it) for some; incoming
OnMessageEvent. Data (``operationId`` keyed): sendData then DataStatusEvent ACCEPTED | FAILED.
Diagnostics: ErrorEvent, and a per-node ``StreamsStatEvent`` (a hook the catalog does not
know) every ``stats_interval_ms`` up to the end of the trace.
"""

from __future__ import annotations

import random
from typing import Any

from wcs_analytics.simulate.config import SimConfig
from wcs_analytics.simulate.ids import phrase, uuid4
from wcs_analytics.simulate.lifecycle import Context, Lifecycle, Step

MESSAGE_OUTCOMES = {"ACCEPTED": 0.5, "DELIVERED": 0.25, "FAILED": 0.1, "INCOMING": 0.15}
DATA_OUTCOMES = {"ACCEPTED": 0.85, "FAILED": 0.15}
ERROR_INFO = ("Failed to send REST request: Read timed out", "Unexpected response 500 from backend")


def build_message(rng: random.Random, ctx: Context, outcome: str) -> Lifecycle:
    lc = Lifecycle("message", uuid4(rng), ctx, outcome)
    imdn = outcome == "DELIVERED" or (outcome == "ACCEPTED" and rng.random() < 0.2)
    fields: dict[str, Any] = {
        "id": lc.key,
        "from": str(rng.randint(1000, 1999)),
        "to": str(rng.randint(1000, 1999)),
        "visibleName": "",
        "body": phrase(rng),
        "contentType": "text/plain",
        "isImdnRequired": imdn,
    }
    if outcome == "INCOMING":
        lc.add(rng, (1, 1), "OnMessageEvent", **fields, sipMessageRaw="MESSAGE sip:... SIP/2.0")
        return lc
    lc.add(rng, (1, 1), "sendMessage", **fields)
    if outcome == "FAILED":
        lc.add(
            rng,
            (10, 300),
            "MessageStatusEvent",
            **fields,
            status="FAILED",
            info="SIP 404 Not Found",
        )
        return lc
    lc.add(rng, (10, 300), "MessageStatusEvent", **fields, status="ACCEPTED", info="")
    if outcome == "DELIVERED":
        lc.add(
            rng, (1_500, 10_000), "MessageStatusEvent", **fields, status="IMDN_DELIVERED", info=""
        )
    return lc


def build_data(rng: random.Random, ctx: Context, outcome: str) -> Lifecycle:
    lc = Lifecycle("data", uuid4(rng), ctx, outcome)
    payload = {"type": "chat", "text": phrase(rng), "seq": rng.randint(1, 1000)}
    lc.add(rng, (1, 1), "sendData", operationId=lc.key, payload=payload)
    info = "" if outcome == "ACCEPTED" else "Failed to send data"
    lc.add(rng, (5, 60), "DataStatusEvent", operationId=lc.key, status=outcome, info=info)
    return lc


def build_error(rng: random.Random, ctx: Context) -> Lifecycle:
    lc = Lifecycle("error", f"{ctx.node_id}/{ctx.session_id}", ctx, "ERROR")
    lc.add(rng, (1, 1), "ErrorEvent", info=rng.choice(ERROR_INFO))
    return lc


def build_stats(rng: random.Random, node_id: str, cfg: SimConfig) -> Lifecycle:
    """Node-wide statistics, the last one exactly at ``cfg.end_ms``; placed already (``fixed``)."""
    lc = Lifecycle("stats", node_id, Context(node_id, "", ""), "STATS", "fixed")
    at = cfg.start_ms
    while at < cfg.end_ms:
        at = min(at + cfg.stats_interval_ms, cfg.end_ms)
        streams = rng.randint(0, 50)
        body = {"nodeId": node_id, "streams": streams, "publishers": streams // 3}
        lc.steps.append(Step(at, "StreamsStatEvent", body))
    return lc
