"""WCS REST hook catalog: canonical method names, their family and entity key.

Matching is case-insensitive and every alias (a spelling some WCS build uses)
maps to exactly one canonical name. A syntactically valid name that is not in
the catalog is accepted into family ``unknown``: a newer WCS is never refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

FAMILIES: Final = (
    "connection",
    "call",
    "message",
    "subscription",
    "stream",
    "data",
    "diagnostic",
    "unknown",
)

METHOD_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")

# canonical name -> family; the seed list first, then names only some builds send
CANONICAL: Final[dict[str, str]] = {
    "connect": "connection",
    "ConnectionStatusEvent": "connection",
    "RegistrationStatusEvent": "connection",
    "call": "call",
    "OnCallEvent": "call",
    "CallStatusEvent": "call",
    "answer": "call",
    "hangup": "call",
    "hold": "call",
    "unhold": "call",
    "transfer": "call",
    "TransferStatusEvent": "call",
    "OnTransferEvent": "call",
    "sendDTMF": "call",
    "sendMessage": "message",
    "OnMessageEvent": "message",
    "MessageStatusEvent": "message",
    "sendIMDN": "message",
    "subscribe": "subscription",
    "SubscriptionStatusEvent": "subscription",
    "sendXcapRequest": "subscription",
    "XcapStatusEvent": "subscription",
    "publishStream": "stream",
    "unPublishStream": "stream",
    "playStream": "stream",
    "playHLS": "stream",
    "playRTSP": "stream",
    "stopStream": "stream",
    "pauseStream": "stream",
    "snapshot": "stream",
    "StreamStatusEvent": "stream",
    "StreamKeepAliveEvent": "stream",
    "RecordingStatusEvent": "stream",
    "sendStreamEvent": "stream",
    "StreamEvent": "stream",
    "availableStream": "stream",
    "sendData": "data",
    "OnDataEvent": "data",
    "DataStatusEvent": "data",
    "ErrorEvent": "diagnostic",
    "sendBugReport": "diagnostic",
    "BugReportStatusEvent": "diagnostic",
    "pushLogs": "diagnostic",
    "sessionDebug": "diagnostic",
    "SessionDebugStatusEvent": "diagnostic",
}

# other spellings seen in WCS builds and SDKs -> canonical name
ALIASES: Final[dict[str, str]] = {
    "sendDtmf": "sendDTMF",
    "submitBugReport": "sendBugReport",
    "ErrorStatusEvent": "ErrorEvent",
}

# where each family finds its entity key in the body; None = nodeId/sessionId
KEY_FIELD: Final[dict[str, str | None]] = {
    "connection": None,
    "call": "callId",
    "message": "id",
    "subscription": None,
    "stream": "mediaSessionId",
    "data": "operationId",
    "diagnostic": None,
    "unknown": None,
}
KEY_FIELD_BY_METHOD: Final[dict[str, str]] = {"sendIMDN": "messageId"}

_LOOKUP: Final[dict[str, str]] = {name.lower(): name for name in CANONICAL} | {
    alias.lower(): canonical for alias, canonical in ALIASES.items()
}


@dataclass(frozen=True, slots=True)
class Method:
    name: str  # canonical name, or the name as received for family "unknown"
    family: str


def is_valid_name(name: str) -> bool:
    return METHOD_NAME.fullmatch(name) is not None


def resolve(name: str) -> Method:
    """Canonical method for a hook name. The caller validates the syntax first."""
    canonical = _LOOKUP.get(name.lower())
    if canonical is None:
        return Method(name, "unknown")
    return Method(canonical, CANONICAL[canonical])


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def session_key(body: dict[str, Any]) -> str:
    return f"{_text(body.get('nodeId')) or ''}/{_text(body.get('sessionId')) or ''}"


def entity_key(method: Method, body: dict[str, Any]) -> str:
    """The key that orders one entity's events (Kafka message key, state key)."""
    field = KEY_FIELD_BY_METHOD.get(method.name) or KEY_FIELD[method.family]
    if field is not None:
        value = _text(body.get(field))
        if value is not None:
            return value
    return session_key(body)
