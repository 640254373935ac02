"""A tenant's active rules, compiled once per rule version and cached per process.

Evaluating a message must not reload and recompile thousands of rules. The cache holds derived,
immutable data only (compiled patterns, priorities); every message first asks the database for the
tenant's rule version (count and latest `updated_at`, one aggregate query), so a change made in any
process is seen by every process on its next message.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max

from rules import patterns
from rules.models import Rule, TriggerType, trigger_shape
from tenants import scoping

# Below this many regex rules, trying each compiled pattern is as fast as a set prefilter.
SET_THRESHOLD = 64
MAX_CACHED_TENANTS = 512


@dataclass(frozen=True)
class CompiledRule:
    id: Any
    name: str
    priority: int
    trigger_type: str
    pattern: str
    flags: str
    condition: str
    continue_matching: bool
    fallback_text: str
    regex: Any = None
    set_index: int | None = None

    @property
    def trigger(self) -> dict:
        return trigger_shape(self)


class RuleSet:
    """The active rules of one tenant in evaluation order, with an optional RE2 set prefilter."""

    def __init__(self, rules: list[CompiledRule], prefilter: patterns.PatternSet | None) -> None:
        self.rules = rules
        self.prefilter = prefilter
        self.ai_rules = [rule for rule in rules if rule.trigger_type == TriggerType.AI]
        # With a prefilter, a message only needs to visit the rules the set names plus every rule
        # that is not in the set (ai, always): thousands of non-matching regex rules cost nothing.
        self._outside_set = [i for i, rule in enumerate(rules) if rule.set_index is None]
        self._position = {rule.set_index: i for i, rule in enumerate(rules) if rule.set_index is not None}

    def regex_candidates(self, text: str) -> set[int] | None:
        """Set indexes of the regex rules that may match, or None when every regex must be tried."""
        return self.prefilter.candidates(text) if self.prefilter is not None else None

    def to_visit(self, candidates: set[int] | None) -> list[CompiledRule]:
        """The rules worth trying for a message, in evaluation order."""
        if candidates is None:
            return self.rules
        positions = sorted([*self._outside_set, *(self._position[index] for index in candidates)])
        return [self.rules[position] for position in positions]


_cache: OrderedDict[Any, tuple[tuple, RuleSet]] = OrderedDict()
_lock = threading.Lock()


def _version(tenant) -> tuple:
    # Over all the tenant's rules, active or not: a deactivation is a save, which moves updated_at;
    # a deletion changes the count.
    stats = scoping.for_tenant(Rule, tenant).aggregate(count=Count("id"), latest=Max("updated_at"))
    return (stats["count"], stats["latest"])


def _build(tenant) -> RuleSet:
    rows = scoping.for_tenant(Rule, tenant).filter(is_active=True).order_by("priority", "created_at", "id")
    compiled: list[CompiledRule] = []
    regex_count = 0
    for row in rows.iterator():
        regex = None
        if row.trigger_type == TriggerType.REGEX:
            try:
                regex = patterns.compile_pattern(row.pattern, row.flags)
            except patterns.PatternError:
                # Saved before validation existed or edited in the database: never matches.
                regex = None
        compiled.append(
            CompiledRule(
                id=row.id,
                name=row.name,
                priority=row.priority,
                trigger_type=row.trigger_type,
                pattern=row.pattern,
                flags=row.flags,
                condition=row.condition,
                continue_matching=row.continue_matching,
                fallback_text=row.fallback_text,
                regex=regex,
            )
        )
        regex_count += regex is not None
    prefilter = None
    if regex_count >= SET_THRESHOLD:
        compiled, set_patterns = _with_set_indexes(compiled)
        prefilter = patterns.PatternSet(set_patterns)
    return RuleSet(compiled, prefilter)


def _with_set_indexes(rules: list[CompiledRule]) -> tuple[list[CompiledRule], list[str]]:
    indexed: list[CompiledRule] = []
    set_patterns: list[str] = []
    for rule in rules:
        if rule.regex is not None:
            rule = CompiledRule(**{**rule.__dict__, "set_index": len(set_patterns)})
            set_patterns.append(patterns.effective(rule.pattern, rule.flags))
        indexed.append(rule)
    return indexed, set_patterns


def ruleset_for(tenant) -> RuleSet:
    """The tenant's compiled rules, rebuilt only when a rule changed since the cached build."""
    version = _version(tenant)
    with _lock:
        cached = _cache.get(tenant.pk)
        if cached is not None and cached[0] == version:
            _cache.move_to_end(tenant.pk)
            return cached[1]
    built = _build(tenant)
    with _lock:
        _cache[tenant.pk] = (version, built)
        _cache.move_to_end(tenant.pk)
        while len(_cache) > MAX_CACHED_TENANTS:
            _cache.popitem(last=False)
    return built


def clear_cache() -> None:
    with _lock:
        _cache.clear()
