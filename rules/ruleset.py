"""A tenant's active rules, compiled once per rule version and cached per process.

Evaluating a message must not reload and recompile thousands of rules. The cache holds derived,
immutable data only (compiled patterns, priorities), keyed by the tenant's rule version: a token in
the shared cache that every committed change of a rule replaces (`rules_changed`, wired to Rule's
save and delete signals). Each message reads that one key — not an aggregate over thousands of rules —
so a change made in any process is seen by every process on its next message. When the token is
missing (evicted, flushed) it is derived from the rules themselves (count and latest `updated_at`).

After a change commits, the process that made it rebuilds the rule set in a background thread, so the
next visitor message finds it compiled; a message arriving while a build of the same version is under
way waits for that build rather than starting a second one.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import Count, Max

from rules import patterns
from rules.models import Rule, TriggerType, trigger_shape
from tenants import scoping

# Below this many regex rules, trying each compiled pattern is as fast as a set prefilter.
SET_THRESHOLD = 64
MAX_CACHED_TENANTS = 512
VERSION_KEY = "rules:ruleset-version:{tenant_id}"

logger = logging.getLogger(__name__)


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


_cache: OrderedDict[Any, tuple[str, RuleSet]] = OrderedDict()
_lock = threading.Lock()
_build_locks: dict[Any, threading.Lock] = {}


def _version(tenant) -> str:
    key = VERSION_KEY.format(tenant_id=tenant.pk)
    token = cache.get(key)
    if token is None:
        # Over all the tenant's rules, active or not: a deactivation is a save, which moves
        # updated_at; a deletion changes the count. `add` never replaces a token a change just wrote.
        stats = scoping.for_tenant(Rule, tenant).aggregate(count=Count("id"), latest=Max("updated_at"))
        cache.add(key, f"rows:{stats['count']}:{stats['latest']}", timeout=None)
        token = cache.get(key) or f"rows:{stats['count']}:{stats['latest']}"
    return token


def rule_saved_or_deleted(sender, instance, **kwargs) -> None:
    """Rule's post_save/post_delete receiver (rules.apps): a changed rule changes the tenant's version.

    A signal rather than a call in each writer, so the admin's bulk delete, the API, the demo and
    the services all move the version. This process forgets its build at once (its next message
    sees its own uncommitted change); the shared token moves only after the commit, so no other
    process can build the old rules under the new version.
    """
    tenant_id = instance.tenant_id
    forget(tenant_id)
    transaction.on_commit(lambda: rules_changed(tenant_id))


def rules_changed(tenant_id: Any) -> None:
    """A committed change of the tenant's rules: every process rebuilds on its next message, and this
    one starts rebuilding now, in the background (RULES_BUILD_IN_BACKGROUND)."""
    cache.set(VERSION_KEY.format(tenant_id=tenant_id), uuid.uuid4().hex, timeout=None)
    if settings.RULES_BUILD_IN_BACKGROUND:
        threading.Thread(target=_rebuild_in_background, args=(tenant_id,), daemon=True).start()


def forget(tenant_id: Any) -> None:
    """Drop this process's build of the tenant's rules."""
    with _lock:
        _cache.pop(tenant_id, None)


def _rebuild_in_background(tenant_id: Any) -> None:
    from tenants.models import Tenant

    try:
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is not None:
            ruleset_for(tenant)
    except Exception:
        logger.warning("background rule-set build failed; the next message builds it", exc_info=True)
    finally:
        connections.close_all()  # this thread's own connections


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


def _cached(tenant, version: str) -> RuleSet | None:
    with _lock:
        cached = _cache.get(tenant.pk)
        if cached is not None and cached[0] == version:
            _cache.move_to_end(tenant.pk)
            return cached[1]
    return None


def ruleset_for(tenant) -> RuleSet:
    """The tenant's compiled rules, rebuilt only when a rule changed since the cached build."""
    version = _version(tenant)
    found = _cached(tenant, version)
    if found is not None:
        return found
    with _lock:
        build_lock = _build_locks.setdefault(tenant.pk, threading.Lock())
    with build_lock:  # one build per tenant at a time: a second caller finds the first one's result
        found = _cached(tenant, version)
        if found is not None:
            return found
        built = _build(tenant)
        _store(tenant, version, built)
    return built


def _store(tenant, version: str, built: RuleSet) -> None:
    with _lock:
        _cache[tenant.pk] = (version, built)
        _cache.move_to_end(tenant.pk)
        while len(_cache) > MAX_CACHED_TENANTS:
            evicted, _ = _cache.popitem(last=False)
            _build_locks.pop(evicted, None)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
