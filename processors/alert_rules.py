"""FAILED-spike alert rules: built-in defaults, overridable from a TOML file (docs/alerts.md).

A rule watches one family's per-minute ``status_counts``. In a window, ``failures`` is
the sum of its ``failure_statuses`` and ``attempts`` the sum of its ``attempt_statuses``
(entities that reached an outcome in that minute; the failure statuses are always
among them). Parsing is pure: ``parse_rules`` takes the decoded TOML mapping,
``load_rules`` reads the file. Errors are ValueError naming the rule and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

# outcome statuses per family (see docs/alerts.md#attempts): one per ended entity, mostly
ATTEMPT_STATUSES: Final[dict[str, tuple[str, ...]]] = {
    "connection": ("DISCONNECTED", "FAILED"),
    "call": ("FINISH", "BUSY", "FAILED"),
    "stream": ("UNPUBLISHED", "STOPPED", "FAILED"),
    "message": ("ACCEPTED", "FAILED"),
    "data": ("ACCEPTED", "FAILED"),
}


@dataclass(frozen=True, slots=True)
class Rule:
    """Fire when failures >= min_failures, failures/attempts >= min_ratio and failures >
    baseline_factor x baseline (EWMA of earlier windows, weight ``ewma_alpha``).
    A firing window is "clear" when the same test with the ``resolve_*`` thresholds
    fails; ``resolve_windows`` consecutive clear windows resolve the alert."""

    name: str
    family: str
    failure_statuses: tuple[str, ...] = ("FAILED",)
    attempt_statuses: tuple[str, ...] = ()
    by_node: bool = False
    min_failures: int = 5
    min_ratio: float = 0.2
    baseline_factor: float = 3.0
    ewma_alpha: float = 0.3
    resolve_min_failures: int = 3
    resolve_ratio: float = 0.1
    resolve_factor: float = 2.0
    resolve_windows: int = 3

    def validate(self) -> Rule:
        where = f"alert rule {self.name!r}"
        if self.family not in ATTEMPT_STATUSES:
            raise ValueError(f"{where}: family must be one of {sorted(ATTEMPT_STATUSES)}")
        if not self.failure_statuses or not set(self.failure_statuses) <= set(
            self.attempt_statuses
        ):
            raise ValueError(f"{where}: failure_statuses must be non-empty attempt_statuses")
        if self.min_failures < 1 or self.resolve_min_failures < 0 or self.resolve_windows < 1:
            raise ValueError(f"{where}: min_failures/resolve_windows must be >= 1")
        if not 0 < self.ewma_alpha <= 1:
            raise ValueError(f"{where}: ewma_alpha must be in (0, 1]")
        ordered = (
            self.resolve_min_failures <= self.min_failures
            and self.resolve_ratio <= self.min_ratio
            and 0 <= self.resolve_factor <= self.baseline_factor
        )
        if not ordered:
            raise ValueError(f"{where}: resolve thresholds must not exceed the firing ones")
        return self


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Detector-wide settings plus the rules. A window ``[s, s + window_ms)`` is evaluated
    once the event clock passes ``s + window_ms + evaluation_delay_ms``: at least the
    pipeline's ``window_lateness_ms`` (60 s), so its status_counts row has been emitted;
    5 s more absorb the gap between the pipeline's advance and the detector's clock
    read. No rule fires during the first ``warmup_windows`` windows the detector
    evaluates (it learns baselines; a restart without saved state does not alert on
    steady failures)."""

    rules: tuple[Rule, ...]
    window_ms: int = 60_000
    evaluation_delay_ms: int = 65_000
    warmup_windows: int = 5


def default_rules(overrides: dict[str, Any] | None = None) -> tuple[Rule, ...]:
    """One ``<family>_failed_spike`` rule per family, with ``overrides`` applied."""
    return tuple(
        _rule({"name": f"{fam}_failed_spike", "family": fam, **(overrides or {})})
        for fam in ATTEMPT_STATUSES
    )


_RULE_KEYS: Final = {f.name for f in fields(Rule)}
_TOP_KEYS: Final = {"window_ms", "evaluation_delay_ms", "warmup_windows"}


_KINDS: Final = {f.name: str(f.type) for f in fields(Rule)}


def _typed(rule: Any, key: str, value: Any) -> Any:
    """``value`` checked against the field's type (TOML arrays become tuples)."""
    kind = _KINDS[key]
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "tuple[str, ...]": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[kind]
    if not ok:
        raise ValueError(f"alert rule {rule!r}: {key} must be {kind}, got {value!r}")
    return tuple(value) if isinstance(value, list) else value


def _rule(values: dict[str, Any]) -> Rule:
    unknown = set(values) - _RULE_KEYS
    if unknown:
        raise ValueError(f"alert rule {values.get('name')!r}: unknown keys {sorted(unknown)}")
    if "name" not in values or "family" not in values:
        raise ValueError(f"alert rule {values}: needs name and family")
    typed: dict[str, Any] = {k: _typed(values.get("name"), k, v) for k, v in values.items()}
    rule = Rule(**typed)
    if not rule.attempt_statuses:
        rule = replace(rule, attempt_statuses=ATTEMPT_STATUSES.get(rule.family, ()))
    return rule.validate()


def parse_rules(doc: dict[str, Any]) -> AlertRules:
    """``[detector]`` (window_ms, evaluation_delay_ms, warmup_windows), ``[defaults]`` (rule
    keys applied to every rule) and ``[[rules]]``; without ``[[rules]]`` the built-in
    per-family rules are used (with ``[defaults]``)."""
    unknown = set(doc) - {"detector", "defaults", "rules"}
    if unknown:
        raise ValueError(f"alert rules: unknown sections {sorted(unknown)}")
    detector, defaults = dict(doc.get("detector", {})), dict(doc.get("defaults", {}))
    if set(detector) - _TOP_KEYS:
        raise ValueError(
            f"alert rules [detector]: unknown keys {sorted(set(detector) - _TOP_KEYS)}"
        )
    listed = doc.get("rules")
    rules = tuple(_rule({**defaults, **r}) for r in listed) if listed else default_rules(defaults)
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ValueError(f"alert rules: duplicate rule names in {names}")
    result = AlertRules(rules, **detector)
    if min(result.window_ms, result.warmup_windows + 1) < 1 or result.evaluation_delay_ms < 0:
        raise ValueError("alert rules [detector]: window_ms >= 1, delay/warmup >= 0")
    return result


DEFAULT_RULES: Final = AlertRules(default_rules())


def load_rules(path: Path | None) -> AlertRules:
    """The rules in ``path`` (TOML), or the built-in defaults when None."""
    if path is None:
        return DEFAULT_RULES
    with path.open("rb") as handle:
        return parse_rules(tomllib.load(handle))
