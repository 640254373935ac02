"""A tenant's active rules compiled for evaluation: the immutable `RuleSet` a message walks.

A rule set is built from plain rows (`ROW_FIELDS`, one query, or the snapshot the compile task
shared: rules.ruleset). Most of the cost is the RE2 set prefilter. The patterns of the rules outside
the set (tried by every message) compile with the build; a pattern inside the set compiles the first
time the set names it as a candidate, so 10,000 regex rules build in about a fifth of the time it
takes to compile each of them. A built set is never changed afterwards, apart from those once-only
compilations (and each rule's action tree, read on its first match), which are idempotent and safe
to race: a message never sees a half-built set.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from functools import cached_property
from typing import Any

from rules import patterns
from rules.models import Rule, RuleAction, TriggerType, trigger_shape

# Below this many regex rules, trying each compiled pattern is as fast as a set prefilter.
SET_THRESHOLD = 64
Row = tuple[Any, ...]
# What a build reads of each active rule, in evaluation order (also the shape of the shared snapshot).
ROW_FIELDS = (
    "id",
    "name",
    "priority",
    "trigger_type",
    "pattern",
    "flags",
    "condition",
    "continue_matching",
    "fallback_text",
    "updated_at",
)


@dataclasses.dataclass(frozen=True)
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
    # What the rule row said when it was compiled: the engine runs a rule only while this still holds.
    updated_at: datetime
    set_index: int | None = None

    @property
    def trigger(self) -> dict[str, Any]:
        return trigger_shape(self)

    @cached_property
    def regex(self) -> Any:
        """The compiled pattern, or None when it does not compile (or the rule is not a regex rule)."""
        if self.trigger_type != TriggerType.REGEX:
            return None
        try:
            return patterns.compile_pattern(self.pattern, self.flags)
        except patterns.PatternError:
            # Saved before validation existed or edited in the database: never matches.
            return None

    @cached_property
    def actions(self) -> list[RuleAction]:
        """The rule's action tree, read on its first match and kept with this build: a change of an
        action moves the rule version like a change of the rule (rules.apps). Shared by every
        message on this build, so treat as read-only; endpoints are not part of it (read per call)."""
        return load_actions(self) or []


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


def load_actions(rule: CompiledRule, *, confirm: bool = False) -> list[RuleAction] | None:
    """The rule's top-level actions in order, each with `branch_children` (its branch actions).

    `confirm`: first check, in the same query, that the rule is still what was compiled (same
    `updated_at`, active); None when it is not (deleted, deactivated or edited since).
    """
    rows = RuleAction.objects.filter(rule_id=rule.id)
    if confirm:
        rows = rows.filter(rule__is_active=True, rule__updated_at=rule.updated_at)
    loaded = list(rows)
    if confirm and not loaded:
        unchanged = Rule.objects.filter(pk=rule.id, is_active=True, updated_at=rule.updated_at)
        if not unchanged.exists():
            return None
    by_parent: dict[Any, list[RuleAction]] = {}
    for row in loaded:
        by_parent.setdefault(row.parent_id, []).append(row)
    for row in loaded:
        row.branch_children = sorted(by_parent.get(row.id, []), key=_position)
    return sorted(by_parent.get(None, []), key=_position)


def _position(action: RuleAction) -> tuple[int, str]:
    return (action.position, str(action.id))


def active_rows(tenant_id: Any) -> list[Row]:
    """The tenant's active rules as `ROW_FIELDS` tuples, in evaluation order (priority, then age)."""
    rows = Rule.objects.filter(tenant_id=tenant_id, is_active=True).order_by("priority", "created_at", "id")
    return list(rows.values_list(*ROW_FIELDS))


def build(rows: list[Row]) -> RuleSet:
    """Compile `active_rows()` into a rule set (from SET_THRESHOLD regex rules up, with a prefilter)."""
    in_set = [i for i, row in enumerate(rows) if _settable(row)]
    prefilter = None
    set_index: dict[int, int] = {}
    if len(in_set) >= SET_THRESHOLD:
        prefilter = patterns.PatternSet([patterns.effective(rows[i][_PATTERN], rows[i][_FLAGS]) for i in in_set])
        set_index = {i: index for i, index in zip(in_set, prefilter.indexes, strict=True) if index is not None}
    # Each row is exactly ROW_FIELDS, which ends before set_index.
    rules = [CompiledRule(*row, set_index=set_index.get(i)) for i, row in enumerate(rows)]  # type: ignore[misc]
    for rule in rules:
        if rule.set_index is None:
            _ = rule.regex  # tried by every message: compiled with the build, not on a message
    return RuleSet(rules, prefilter)


_TRIGGER, _PATTERN, _FLAGS = (ROW_FIELDS.index(name) for name in ("trigger_type", "pattern", "flags"))


def _settable(row: Row) -> bool:
    # A pattern compile_pattern() refuses stays outside the set: always visited, reported as not compiling.
    return row[_TRIGGER] == TriggerType.REGEX and 0 < len(row[_PATTERN]) <= patterns.MAX_PATTERN_LENGTH
