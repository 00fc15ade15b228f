"""Connection lifecycles: connect, ESTABLISHED, optional REGISTERED, DISCONNECTED | FAILED."""

from __future__ import annotations

import random
from typing import Any

from wcs_analytics.simulate.ids import secret
from wcs_analytics.simulate.lifecycle import Context, Lifecycle

OUTCOMES = {"DISCONNECTED": 0.8, "FAILED": 0.2}
OPEN = ("OPEN",)
FAIL_INFO = ("Failed by keep alive", "Websocket transport error", "Session creation failed")
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
)


def connect_body(rng: random.Random, sip: bool) -> dict[str, Any]:
    """Fields of the ``connect`` hook besides the context; carries the secrets."""
    browser = rng.choice(BROWSERS)
    body: dict[str, Any] = {
        "useWsTunnel": False,
        "useWsTunnelPacketization2": False,
        "useBase64BinaryEncoding": False,
        "mediaProviders": ["WebRTC", "MSE", "WSPlayer"],
        "clientVersion": f"2.0.{rng.randint(200, 260)}",
        "clientOSVersion": browser.split(" ", 1)[1],
        "clientBrowserVersion": browser,
        "msePacketizationVersion": 2,
        "keepAlive": False,
        "authToken": secret(rng),
        "custom": {"userId": f"user-{rng.randint(1, 9999)}", "token": secret(rng)},
    }
    if sip:
        login = str(rng.randint(1000, 1999))
        body |= {
            "sipLogin": login,
            "sipAuthenticationName": login,
            "sipPassword": secret(rng, 6),
            "sipDomain": "pbx.example.com",
            "sipOutboundProxy": "pbx.example.com",
            "sipPort": 5060,
            "sipRegisterRequired": True,
        }
    return body


def build(rng: random.Random, ctx: Context, outcome: str) -> Lifecycle:
    """One WebSocket session; ``OPEN`` never ends (no timeout applies within a trace)."""
    lc = Lifecycle("connection", f"{ctx.node_id}/{ctx.session_id}", ctx, outcome)
    sip = rng.random() < 0.6
    fields = connect_body(rng, sip)
    lc.add(rng, (1, 1), "connect", **fields)
    origin = "https://app.example.com"
    lc.add(rng, (5, 40), "ConnectionStatusEvent", **fields, status="ESTABLISHED", origin=origin)
    if sip:
        raw = "SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\n"
        lc.add(rng, (60, 600), "RegistrationStatusEvent", status="REGISTERED", sipMessageRaw=raw)
    if outcome == "DISCONNECTED":
        lc.add(rng, (20_000, 300_000), "ConnectionStatusEvent", status="DISCONNECTED", info="")
    elif outcome == "FAILED":
        info = rng.choice(FAIL_INFO)
        lc.add(rng, (5_000, 300_000), "ConnectionStatusEvent", status="FAILED", info=info)
    return lc
