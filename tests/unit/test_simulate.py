"""The traffic generator: determinism, coverage, secrets, noise, and truth consistency."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest

from events.catalog import entity_key, resolve
from events.envelope import decode
from wcs_analytics.simulate import (
    SimConfig,
    Trace,
    generate,
    ndjson_lines,
    post,
    to_envelopes,
)

EXPECTED_METHODS = {
    "connect",
    "ConnectionStatusEvent",
    "RegistrationStatusEvent",
    "call",
    "OnCallEvent",
    "CallStatusEvent",
    "answer",
    "hangup",
    "hold",
    "unhold",
    "publishStream",
    "unPublishStream",
    "playStream",
    "playHLS",
    "stopStream",
    "StreamStatusEvent",
    "StreamKeepAliveEvent",
    "sendMessage",
    "OnMessageEvent",
    "MessageStatusEvent",
    "sendData",
    "DataStatusEvent",
    "ErrorEvent",
    "StreamsStatEvent",
}
SECRET_FIELDS = ("sipPassword", "authToken", "token")
# bodies that are unique per hook (no two distinct hooks share one)
UNIQUE_BODY_METHODS = {"connect", "call", "OnCallEvent", "publishStream", "playStream", "playHLS"}
UNIQUE_BODY_METHODS |= {"sendMessage", "OnMessageEvent", "sendData", "DataStatusEvent"}

DEFAULT = generate(SimConfig())


def _small(**overrides: Any) -> Trace:
    counts = {"connections": 3, "calls": 4, "publishers": 2, "viewers": 2, "messages": 3}
    return generate(SimConfig(**(counts | {"data_ops": 2, "errors": 1} | overrides)))


def _canon(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _by_key(trace: Trace, method: str | None = None) -> dict[str, list[tuple[int, str, Any]]]:
    """Hooks grouped by entity key (as the catalog computes it), optionally of one method."""
    groups: dict[str, list[tuple[int, str, Any]]] = {}
    for at, name, body in trace.hooks:
        if method is None or name == method:
            groups.setdefault(entity_key(resolve(name), body), []).append((at, name, body))
    return groups


def _secret_values(value: Any, found: dict[str, set[str]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SECRET_FIELDS:
                found.setdefault(key, set()).add(item)
            _secret_values(item, found)


# -- determinism and coverage -----------------------------------------------------------------


def test_same_seed_gives_identical_trace_and_truth() -> None:
    again = generate(SimConfig())
    assert again.hooks == DEFAULT.hooks
    assert again.truth == DEFAULT.truth
    other = generate(SimConfig(seed=2))
    assert other.hooks != DEFAULT.hooks


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_every_method_and_family_appears(seed: int) -> None:
    trace = generate(SimConfig(seed=seed))
    methods = {name for _, name, _ in trace.hooks}
    assert methods >= EXPECTED_METHODS
    families = {resolve(name).family for name in methods}
    assert families >= {"connection", "call", "message", "stream", "data", "diagnostic", "unknown"}


def test_hooks_are_sorted_and_end_at_the_configured_horizon() -> None:
    cfg = DEFAULT.config
    times = [at for at, _, _ in DEFAULT.hooks]
    assert times == sorted(times)
    assert times[0] >= cfg.start_ms
    assert cfg.end_ms <= times[-1] <= cfg.end_ms + 1000
    assert DEFAULT.truth["params"]["trace_end"] == times[-1]


def test_identifiers_look_like_wcs() -> None:
    bodies = [body for _, _, body in DEFAULT.hooks]
    nodes = {b["nodeId"] for b in bodies}
    assert len(nodes) == 2
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}@\d+\.\d+\.\d+\.\d+", n) for n in nodes)
    sessions = {b["sessionId"] for b in bodies if "sessionId" in b}
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert all(re.fullmatch(uuid, s) for s in sessions)
    assert {b.get("appKey") for b in bodies} >= set(DEFAULT.config.app_keys)
    hls = [b for _, m, b in DEFAULT.hooks if m == "playHLS"]
    assert hls and all(b["mediaSessionId"].endswith(f"-{b['name']}-HLS") for b in hls)


def test_config_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="duplicate_rate"):
        SimConfig(duplicate_rate=1.5)
    with pytest.raises(ValueError, match="duration_ms"):
        SimConfig(duration_ms=60_000)
    with pytest.raises(ValueError, match="jitter"):
        SimConfig(keepalive_jitter_ms=5_000)


# -- secrets and envelopes --------------------------------------------------------------------


def test_secrets_are_in_raw_hooks_but_not_in_envelopes() -> None:
    found: dict[str, set[str]] = {}
    for _, _, body in DEFAULT.hooks:
        _secret_values(body, found)
    assert set(found) == set(SECRET_FIELDS)
    hls_tokens = {b["custom"]["token"] for _, m, b in DEFAULT.hooks if m == "playHLS"}
    assert hls_tokens <= found["token"]
    assert any("sipPassword" in b for _, m, b in DEFAULT.hooks if m == "call")
    encoded = b"\n".join(ndjson_lines(DEFAULT))
    for values in found.values():
        assert not any(value.encode() in encoded for value in values)
    lowered = encoded.lower()
    assert not any(f'"{key.lower()}"'.encode() in lowered for key in SECRET_FIELDS)


def test_envelopes_follow_the_contract_and_the_trace() -> None:
    lines = list(ndjson_lines(DEFAULT))
    envelopes = [decode(line) for line in lines]
    assert len(envelopes) == len(DEFAULT.hooks)
    assert len({e["id"] for e in envelopes}) == len(envelopes)
    for envelope, (at, name, body) in zip(envelopes, DEFAULT.hooks, strict=True):
        assert envelope["received_at"] == at
        assert envelope["method"] == resolve(name).name
        assert envelope["node_id"] == body["nodeId"]
    calls = [e for e in envelopes if e["method"] == "CallStatusEvent"]
    assert all(e["family"] == "call" and e["key"] == e["body"]["callId"] for e in calls)
    unknown = [e for e in envelopes if e["method"] == "StreamsStatEvent"]
    assert unknown and all(e["family"] == "unknown" for e in unknown)


def test_to_envelopes_uses_the_given_redactor_and_ids() -> None:
    trace = _small()
    counter = iter(range(10**6))
    envelopes = list(
        to_envelopes(trace, ids=lambda: f"x{next(counter)}", redact=lambda b: {**b, "seen": 1})
    )
    assert all(e["body"]["seen"] == 1 for e in envelopes)
    assert [e["id"] for e in envelopes[:2]] == ["x0", "x1"]
    assert any("sipPassword" in e["body"] or "authToken" in e["body"] for e in envelopes)


# -- noise ------------------------------------------------------------------------------------


def test_duplicates_are_later_copies_counted_in_the_summary() -> None:
    clean = _small(duplicate_rate=0.0)
    noisy = _small(duplicate_rate=0.5)
    assert clean.truth["summary"]["retries"] == 0
    unique = Counter((m, _canon(b)) for _, m, b in clean.hooks if m in UNIQUE_BODY_METHODS)
    assert max(unique.values()) == 1
    extra = Counter((at, m, _canon(b)) for at, m, b in noisy.hooks)
    extra.subtract(Counter((at, m, _canon(b)) for at, m, b in clean.hooks))
    retries = [key for key, n in extra.items() if n > 0]
    assert sum(extra.values()) == len(retries) == noisy.truth["summary"]["retries"] > 5
    originals: dict[tuple[str, bytes], list[int]] = {}
    for at, m, b in clean.hooks:
        originals.setdefault((m, _canon(b)), []).append(at)
    for at, method, body in retries:
        assert any(3 <= at - t <= 1000 for t in originals[(method, body)])


def test_reorders_make_a_status_event_overtake_its_direct_hook() -> None:
    def tries_first(trace: Trace) -> list[bool]:
        calls = _by_key(trace)
        out = []
        for hooks in calls.values():
            names = [m for _, m, _ in hooks]
            if "call" in names:
                out.append(names.index("CallStatusEvent") < names.index("call"))
        return out

    swapped = _small(reorder_rate=1.0, duplicate_rate=0.0)
    ordered = _small(reorder_rate=0.0, duplicate_rate=0.0)
    assert tries_first(swapped) and all(tries_first(swapped))
    assert tries_first(ordered) and not any(tries_first(ordered))
    assert ordered.truth["summary"]["reorders"] == 0 < swapped.truth["summary"]["reorders"]
    by_id = {c["call_id"]: c for c in swapped.truth["calls"]}
    for key, hooks in _by_key(swapped).items():
        if key in by_id:
            assert by_id[key]["created_at"] == hooks[0][0]


def test_default_scenario_has_reorders_and_retries() -> None:
    summary = DEFAULT.truth["summary"]
    assert summary["reorders"] > 0
    assert summary["retries"] > 0


# -- truth ------------------------------------------------------------------------------------


def test_call_truth_is_internally_consistent() -> None:
    calls = DEFAULT.truth["calls"]
    dispositions = Counter(c["disposition"] for c in calls)
    assert sum(dispositions.values()) == DEFAULT.config.calls == len(calls)
    assert set(dispositions) == {"ANSWERED", "BUSY", "FAILED", "NO_ANSWER", "IN_PROGRESS"}
    open_calls = [c for c in calls if c["ended_at"] is None]
    assert len(open_calls) == round(DEFAULT.config.calls * 0.1)
    assert {c["disposition"] for c in open_calls} == {"ANSWERED", "IN_PROGRESS"}
    trace_end = DEFAULT.truth["params"]["trace_end"]
    for c in calls:
        assert (c["answered_at"] is not None) == (c["disposition"] == "ANSWERED")
        if c["ringing_at"] is not None:
            assert c["pdd_ms"] == c["ringing_at"] - c["created_at"] > 0
        if c["ended_at"] is None:
            assert c["duration_ms"] is None and c["talk_ms"] is None and c["closed_by"] == ""
            assert trace_end - c["created_at"] < 5 * 60_000
            continue
        assert c["disposition"] != "IN_PROGRESS"
        assert c["duration_ms"] == c["ended_at"] - c["created_at"] > 0
        answered = c["answered_at"]
        assert c["talk_ms"] == (0 if answered is None else c["ended_at"] - answered)
        assert 0 <= c["hold_ms"] < (c["talk_ms"] or 1)
    assert any(c["hold_ms"] > 0 for c in calls)


def test_call_truth_matches_first_arrivals_in_the_hooks() -> None:
    groups = _by_key(DEFAULT)
    for c in DEFAULT.truth["calls"]:
        hooks = groups[c["call_id"]]
        assert c["created_at"] == hooks[0][0]
        first = {}
        for at, _, body in reversed(hooks):
            if body.get("status"):
                first[body["status"]] = at
        assert c["answered_at"] == first.get("ESTABLISHED")
        if c["ended_at"] is not None and c["disposition"] in ("ANSWERED", "NO_ANSWER"):
            assert c["ended_at"] == first["FINISH"]


def test_stream_truth_matches_the_keepalives_in_the_hooks() -> None:
    keepalives = _by_key(DEFAULT, "StreamKeepAliveEvent")
    everything = _by_key(DEFAULT)
    streams = DEFAULT.truth["streams"]
    assert len(streams) == DEFAULT.config.publishers + DEFAULT.config.viewers
    trace_end = DEFAULT.truth["params"]["trace_end"]
    for s in streams:
        times = sorted({at for at, _, _ in keepalives.get(s["media_session_id"], [])})
        assert s["keepalive_count"] == len(times)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert s["keepalive_max_gap_ms"] == max(gaps, default=0)
        if s["started_at"] is not None:
            assert s["lifetime_ms"] == s["ended_at"] - s["started_at"] > 0
        assert (s["final_status"] == "") == (s["closed_by"] == "timeout")
        if s["closed_by"] == "timeout":
            hooks = everything[s["media_session_id"]]
            assert s["ended_at"] == hooks[-1][0]
            assert trace_end - s["ended_at"] > DEFAULT.config.keepalive_timeout_ms
            assert not {b.get("status") for _, _, b in hooks} & {"UNPUBLISHED", "STOPPED"}
    closed = Counter(s["closed_by"] for s in streams)
    assert closed["timeout"] > 0 and closed["event"] > 0
    assert {s["final_status"] for s in streams} == {"UNPUBLISHED", "STOPPED", "FAILED", ""}
    assert {s["kind"] for s in streams} == {"publish", "play", "hls"}


def test_keepalive_gaps_are_listed_between_threshold_and_timeout() -> None:
    gaps = DEFAULT.truth["keepalive_gaps"]
    gap_streams = [lc for lc in DEFAULT.lifecycles if lc.outcome.endswith("_GAP")]
    assert gaps and len(gaps) == len(gap_streams)
    cfg = DEFAULT.config
    by_id = {s["media_session_id"]: s for s in DEFAULT.truth["streams"]}
    for gap in gaps:
        assert cfg.keepalive_gap_threshold_ms < gap["gap_ms"] < cfg.keepalive_timeout_ms
        assert gap["gap_end"] - gap["gap_start"] == gap["gap_ms"]
        assert by_id[gap["media_session_id"]]["keepalive_max_gap_ms"] == gap["gap_ms"]
    assert not _small(gap_rate=0.0, publishers=4, viewers=4).truth["keepalive_gaps"]


def test_status_counts_count_each_entity_once_per_status() -> None:
    first: dict[tuple[str, str, str], tuple[int, str, str]] = {}
    for at, name, body in DEFAULT.hooks:
        method = resolve(name)
        if body.get("status"):
            key = (method.family, entity_key(method, body), body["status"])
            first.setdefault(key, (at, body["appKey"], body["nodeId"]))
    expected = Counter(
        (at - at % 60_000, family, status, app, node)
        for (family, _, status), (at, app, node) in first.items()
    )
    got = {
        (r["window_start"], r["family"], r["status"], r["app_key"], r["node_id"]): r["count"]
        for r in DEFAULT.truth["status_counts"]
    }
    assert got == dict(expected)


def test_message_connection_and_data_truth() -> None:
    truth = DEFAULT.truth
    messages = truth["messages"]
    assert len(messages) == DEFAULT.config.messages
    finals = Counter(m["final_status"] for m in messages)
    assert set(finals) == {"RECEIVED", "ACCEPTED", "IMDN_DELIVERED", "FAILED"}
    rates: Counter[str] = Counter()
    for row in truth["message_rates"]:
        rates.update({k: row[k] for k in ("sent", "received", "accepted", "imdn_delivered")})
    assert rates["received"] == finals["RECEIVED"]
    assert rates["sent"] == len(messages) - finals["RECEIVED"]
    assert rates["imdn_delivered"] == finals["IMDN_DELIVERED"]
    connections = truth["connections"]
    assert len(connections) == DEFAULT.config.connections
    assert {c["final_status"] for c in connections} == {"DISCONNECTED", "FAILED", ""}
    for c in connections:
        assert c["established_at"] is not None
        assert (c["ended_at"] is None) == (c["final_status"] == "")
    assert {d["final_status"] for d in truth["data"]} == {"ACCEPTED", "FAILED"}


# -- HTTP poster ------------------------------------------------------------------------------


def test_post_sends_every_raw_body_in_order_and_counts_statuses() -> None:
    trace = _small()
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[1]
        seen.append((request.url.path, orjson.loads(request.content)))
        if method == "ErrorEvent":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(500 if method == "sendData" else 200, content=request.content)

    progress: list[tuple[int, int]] = []
    stats = asyncio.run(
        post(
            trace,
            "http://wcs-analytics:8080/",
            concurrency=1,
            progress=lambda done, total: progress.append((done, total)),
            transport=httpx.MockTransport(handler),
        )
    )
    total = len(trace.hooks)
    assert [(f"/wcs/{m}", b) for _, m, b in trace.hooks] == seen
    methods = Counter(m for _, m, _ in trace.hooks)
    failed = methods["sendData"]
    assert stats.statuses == {200: total - failed - methods["ErrorEvent"], 500: failed}
    assert stats.errors == {"ConnectError": methods["ErrorEvent"]}
    assert progress[-1] == (total, total) and len(progress) == total
    assert stats.latency_ms["p50"] <= stats.latency_ms["p99"] <= stats.latency_ms["max"]


def test_post_paces_requests_at_the_requested_rate() -> None:
    trace = _small(connections=1, calls=1, publishers=0, viewers=0, messages=0, data_ops=0)
    n = len(trace.hooks)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    stats = asyncio.run(post(trace, "http://x", rate=500.0, transport=httpx.MockTransport(handler)))
    assert stats.ok == n
    assert stats.elapsed_s >= (n - 1) / 500.0 * 0.9
    with pytest.raises(ValueError):
        asyncio.run(post(trace, "http://x", rate=0.0))
