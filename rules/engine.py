"""The rule engine: `evaluate_message(conversation, text)` picks the rules that match and runs their actions.

Evaluation order. Active rules are tried by priority (lowest first; ties by creation). A `regex` rule
matches when its RE2 pattern is found in the message (named groups become variables for that rule's
actions); an `always` rule always matches; an `ai` rule matches when the AI provider says its
condition holds. The first rule that matches runs its actions and evaluation stops, unless that rule
has `continue_matching`, in which case the rules after it are tried too.

AI rules: one provider call per message, whatever the number of AI rules. The call is made lazily,
the first time the walk *reaches* an AI rule, and judges the conditions of all the tenant's active AI
rules at once; later AI rules reuse those verdicts. So a message answered by an earlier regex rule
never costs an AI call, priority order is respected exactly, and no message costs more than one.
Without a provider (or when it fails) AI rules are skipped with the reason recorded, and `REPLY_AI`
falls back to the rule's `fallback_text`.

Actions run in order: `CALL_API` (through `integrations.executor`; the response mapping is merged into
the session variables; on a non-success result the action's `on_error` decides: `continue` carries
on, `retry` has the executor try any non-success again within the connection's retry policy and then
acts as `fail`, `fail` stops the rule's actions and replies with its fallback text if it has one,
`branch` runs the action's branch actions instead of the rest of the list), `SET_VARIABLE`, `REPLY_TEXT` (Handlebars, with the
`{name}` shorthand) and `REPLY_AI`.

Template context: the session variables, then the rule's regex groups, then the built-ins
`message` (the visitor's text), `conversation` (`id`, `channel`, `visitor_id`, `identity_verified`, `variables`)
and `api` (the last CALL_API result of this rule: `status`, `status_code`, `error`, `body`).

Rule sets. A live message walks the tenant's compiled rules (rules.ruleset); when that is this
process's previous build (the current one compiling in the background), each rule is confirmed
against the database before its actions run, so a rule deleted, deactivated or edited since never runs.

State. Live evaluation evaluates against the variables of the conversation as the caller loaded it,
then writes back only the variables it changed, under `select_for_update` in one short transaction,
together with the visitor's, assistant and tool messages (rules.transcript). Two messages to one
conversation at once therefore never lose each other's updates, and no lock is held while APIs or
the AI are called. `dry_run=True` runs the same walk but sends nothing and saves nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from integrations import executor, templating
from integrations.models import Endpoint
from rules import agents, ai, compiled, ruleset, transcript
from rules.compiled import CompiledRule
from rules.models import ActionType, Conversation, Message, MessageRole, OnError, RuleAction, TriggerType
from tenants.errors import DomainError

logger = logging.getLogger(__name__)

DEFAULT_FALLBACK_TEXT = "Sorry, I can't help with that right now."
WITHDRAWN = "the rule was changed or deleted since it was compiled"
MAX_BRANCH_DEPTH = 3


class TemplateFailed(DomainError):
    """A rule's template hit a rendering limit (output size, loop steps): the message changes nothing."""


@dataclass
class RuleTrace:
    rule: CompiledRule
    outcome: str  # matched | no_match | skipped | not_reached
    reason: str = ""
    match: dict | None = None

    def to_dict(self) -> dict:
        data = {
            "id": str(self.rule.id),
            "name": self.rule.name,
            "priority": self.rule.priority,
            "trigger": self.rule.trigger,
            "outcome": self.outcome,
            "reason": self.reason,
        }
        if self.match is not None:
            data["match"] = self.match
        return data


@dataclass
class Reply:
    text: str | None
    rule: CompiledRule
    kind: str  # text | ai | fallback
    detail: dict = field(default_factory=dict)


@dataclass
class EngineResult:
    """What one message did (or, in a dry run, would do)."""

    dry_run: bool
    rules: list[RuleTrace] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    variables: dict = field(default_factory=dict)
    changed: dict = field(default_factory=dict)
    ai: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def matched(self) -> list[CompiledRule]:
        return [trace.rule for trace in self.rules if trace.outcome == "matched"]

    @property
    def reply(self) -> str | None:
        texts = [reply.text for reply in self.replies if reply.text]
        return "\n\n".join(texts) if texts else None

    def to_dict(self) -> dict:
        matched = self.matched
        return {
            "dry_run": self.dry_run,
            "matched_rule": _rule_ref(matched[0]) if matched else None,
            "matched_rules": [_rule_ref(rule) for rule in matched],
            "rules": [trace.to_dict() for trace in self.rules],
            "actions": self.actions,
            "replies": [{"rule": _rule_ref(r.rule), "kind": r.kind, "text": r.text, **r.detail} for r in self.replies],
            "reply": self.reply,
            "variables": self.variables,
            "changed_variables": self.changed,
            "ai": self.ai,
            "warnings": self.warnings,
        }


def _rule_ref(rule: CompiledRule) -> dict:
    return {"id": str(rule.id), "name": rule.name}


class _Stop(Exception):
    """Ends the current rule's action list (`fail`, or after a `branch`)."""


class _Evaluation:
    def __init__(
        self, conversation: Conversation, text: str, *, dry_run: bool, visitor_message: Message | None = None
    ) -> None:
        self.conversation = conversation
        self.visitor_message = visitor_message
        self.tenant = conversation.tenant
        self.text = text
        self.dry_run = dry_run
        self.variables = dict(conversation.variables or {})
        self.result = EngineResult(dry_run=dry_run)
        self.provider = ai.provider_for(self.tenant)
        self.verdicts: set[str] | None = None
        self.ai_error: str | None = None
        self.result.ai = {"configured": self.provider is not None, "called": False}
        self.tool_messages: list[dict] = []

    # ---- matching -------------------------------------------------------------------------------
    def run(self) -> EngineResult:
        # A live message may walk this process's previous build while the current one is compiled in
        # the background; then every rule is confirmed before it runs, so none withdrawn runs.
        rule_set, current = ruleset.served(self.tenant, allow_stale=not self.dry_run)
        candidates = rule_set.regex_candidates(self.text)
        # A dry run reports on every rule; a live run visits only the rules that could match.
        rules = rule_set.rules if self.dry_run else rule_set.to_visit(candidates)
        stopped = False
        for rule in rules:
            if stopped and not self.dry_run:
                break
            if stopped:
                self.result.rules.append(RuleTrace(rule, "not_reached", "an earlier rule matched"))
                continue
            trace = self._judge(rule, rule_set, candidates)
            self.result.rules.append(trace)
            if trace.outcome != "matched":
                continue
            actions = rule.actions if current else compiled.load_actions(rule, confirm=True)
            if actions is None:
                trace.outcome, trace.reason, trace.match = "skipped", WITHDRAWN, None
                continue
            self._run_rule(rule, (trace.match or {}).get("groups") or {}, actions)
            stopped = not rule.continue_matching
        self.result.variables = self.variables
        return self.result

    def _judge(self, rule: CompiledRule, rule_set, candidates: set[int] | None) -> RuleTrace:
        if rule.trigger_type == TriggerType.ALWAYS:
            return RuleTrace(rule, "matched", "always matches")
        if rule.trigger_type == TriggerType.REGEX:
            return self._judge_regex(rule, candidates)
        return self._judge_ai(rule, rule_set)

    def _judge_regex(self, rule: CompiledRule, candidates: set[int] | None) -> RuleTrace:
        # The set rules a pattern out before it is compiled: a dry run over 10,000 rules compiles none.
        if candidates is not None and rule.set_index is not None and rule.set_index not in candidates:
            return RuleTrace(rule, "no_match", "the pattern does not match")
        if rule.regex is None:
            return RuleTrace(rule, "skipped", "the pattern does not compile")
        found = rule.regex.search(self.text)
        if found is None:
            return RuleTrace(rule, "no_match", "the pattern does not match")
        groups = {name: value for name, value in found.groupdict().items() if value is not None}
        start, end = found.span()
        match = {"span": [start, end], "text": found.group(0), "groups": groups}
        return RuleTrace(rule, "matched", f"the pattern matched characters {start}-{end}", match)

    def _judge_ai(self, rule: CompiledRule, rule_set) -> RuleTrace:
        if self.provider is None:
            return RuleTrace(rule, "skipped", "no AI provider is configured")
        if self.verdicts is None and self.ai_error is None:
            self._classify(rule_set.ai_rules)
        if self.ai_error is not None:
            return RuleTrace(rule, "skipped", f"the AI provider failed: {self.ai_error}")
        holds = str(rule.id) in (self.verdicts or set())
        verdict = {"ai_verdict": holds}
        if holds:
            return RuleTrace(rule, "matched", "the AI judged the condition true", verdict)
        return RuleTrace(rule, "no_match", "the AI judged the condition false", verdict)

    def _classify(self, ai_rules: list[CompiledRule]) -> None:
        assert self.provider is not None  # _judge_ai asks only with a provider
        conditions = [ai.Condition(id=str(rule.id), text=rule.condition) for rule in ai_rules]
        self.result.ai.update(called=True, conditions=len(conditions))
        try:
            self.verdicts = set(self.provider.classify(self.text, conditions))
        except ai.AIError as exc:
            self.ai_error = str(exc)
            self.result.ai["error"] = self.ai_error
            return
        self.result.ai["matched"] = sorted(self.verdicts)

    # ---- actions --------------------------------------------------------------------------------
    def _run_rule(self, rule: CompiledRule, groups: dict, actions: list[RuleAction]) -> None:
        state = {"groups": groups, "api": None}
        with contextlib.suppress(_Stop):
            self._run_actions(rule, actions, state, depth=0)

    def _run_actions(self, rule: CompiledRule, actions: list[RuleAction], state: dict, *, depth: int) -> None:
        for action in actions:
            handlers: dict[str, Callable[[CompiledRule, RuleAction, dict, int], None]] = {
                ActionType.CALL_API: self._call_api,
                ActionType.SET_VARIABLE: self._set_variable,
                ActionType.REPLY_TEXT: self._reply_text,
                ActionType.REPLY_AI: self._reply_ai,
            }
            handlers[action.type](rule, action, state, depth)

    def conversation_context(self) -> dict:
        """`conversation.*` as it stands now, variables set by earlier actions included."""
        return self.conversation.template_context(self.variables)

    def context(self, state: dict) -> dict:
        return {
            **self.variables,
            **state["groups"],
            "message": self.text,
            "conversation": self.conversation_context(),
            "api": state["api"],
        }

    def _render(self, template: str, state: dict, trace: dict) -> str:
        rendered = templating.render(template or "", self.context(state))
        if rendered.missing:
            trace["missing_variables"] = list(rendered.missing)
        return rendered.value

    def _set(self, name: str, value: Any) -> None:
        self.variables[name] = value
        self.result.changed[name] = value

    def _set_variable(self, rule, action, state, depth) -> None:
        trace = self._trace(rule, action)
        value = self._render(action.value, state, trace)
        self._set(action.variable, value)
        trace.update(name=action.variable, value=value)

    def _reply_text(self, rule, action, state, depth) -> None:
        trace = self._trace(rule, action)
        text = self._render(action.template, state, trace)
        trace["text"] = text
        self.result.replies.append(Reply(text, rule, "text"))

    def _reply_ai(self, rule, action, state, depth) -> None:
        trace = self._trace(rule, action, instructions=action.instructions)
        if self.provider is None:
            trace.update(status="fallback", reason="no AI provider is configured")
            self._fallback(rule, "no AI provider is configured")
            return
        if action.agent_id:
            self._reply_agent(rule, action, trace)
            return
        if self.dry_run:
            trace.update(status="would_run", reason="the AI writes the reply (not called in a dry run)")
            self.result.replies.append(Reply(None, rule, "ai", {"instructions": action.instructions}))
            return
        self.save_visitor_message()  # the provider reads the history, this message included
        try:
            text = self.provider.reply(self.conversation, action.instructions, variables=self.variables)
        except ai.AIError as exc:
            trace.update(status="fallback", reason=str(exc))
            self._fallback(rule, str(exc))
            return
        self.result.replies.append(Reply(text, rule, "ai"))

    def _reply_agent(self, rule, action, trace: dict) -> None:
        trace["agent"] = str(action.agent_id)
        if self.dry_run:
            trace.update(status="would_run", reason="the agent answers, its tools included (not run in a dry run)")
            self.result.replies.append(Reply(None, rule, "agent", {"agent": str(action.agent_id)}))
            return
        self.save_visitor_message()
        try:
            text = agents.agent_runtime().reply(self.conversation, action.agent_id, self.text)
        except agents.AgentError as exc:
            trace.update(status="fallback", reason=exc.message)
            self._fallback(rule, exc.message)
            return
        # The runtime saved its own messages (utterances and tool calls) in the conversation.
        self.result.replies.append(Reply(text, rule, "agent", {"agent": str(action.agent_id)}))

    def save_visitor_message(self) -> None:
        """Write the visitor's message now, for what reads the history mid-evaluation (the AI, an agent);
        otherwise it is written with the replies, in one statement."""
        if self.visitor_message is not None and self.visitor_message._state.adding:
            self.visitor_message.save(force_insert=True)

    def _fallback(self, rule: CompiledRule, reason: str) -> None:
        text = rule.fallback_text or DEFAULT_FALLBACK_TEXT
        self.result.replies.append(Reply(text, rule, "fallback", {"reason": reason}))

    def _trace(self, rule: CompiledRule, action: RuleAction, **extra: Any) -> dict:
        trace = {"rule": _rule_ref(rule), "type": action.type, "status": "ok", **extra}
        self.result.actions.append(trace)
        return trace

    # ---- CALL_API -------------------------------------------------------------------------------
    def _call_api(self, rule, action, state, depth) -> None:
        # Read per call, never kept with the compiled rule: an endpoint's edit does not move the rule version.
        endpoint = Endpoint.objects.select_related("connection").get(pk=action.endpoint_id, tenant=self.tenant)
        trace = self._trace(rule, action, endpoint={"id": str(endpoint.id), "name": endpoint.name})
        trace["on_error"] = action.on_error
        params = {name: self._render_param(value, state, trace) for name, value in (action.params or {}).items()}
        variables = {**self.variables, **state["groups"]}
        trace["params"] = params
        if self.dry_run:
            self._prepare(endpoint, params, variables, trace)
            return
        result = self._execute(endpoint, params, variables, action, trace)
        outcome = result.to_dict()
        state["api"] = {k: outcome.get(k) for k in ("status", "status_code", "error", "body")}
        for name, value in (result.mapped or {}).items():
            self._set(name, value)
        trace.update(status=outcome["status"], status_code=outcome.get("status_code"), mapped=result.mapped or {})
        if outcome.get("error"):
            trace["error"] = outcome["error"]
        self.tool_messages.append({"rule": rule, "endpoint": endpoint, "result": outcome})
        if outcome["status"] != "success":
            self._on_error(rule, action, state, depth, trace)

    def _render_param(self, value: Any, state: dict, trace: dict) -> Any:
        return self._render(value, state, trace) if isinstance(value, str) else value

    def _prepare(self, endpoint, params: dict, variables: dict, trace: dict) -> None:
        trace.update(status="would_run", would_map=sorted((endpoint.response_mapping or {}).keys()))
        try:
            prepared = executor.prepare(
                endpoint, params=params, variables=variables, conversation=self.conversation_context(), dry_run=True
            )
        except Exception as exc:  # the dry run reports what a real run would refuse
            trace.update(status="failure", error=str(exc))
            return
        trace["request"] = prepared.redacted()

    def _execute(self, endpoint, params: dict, variables: dict, action: RuleAction, trace: dict):
        # `retry` is the executor's to apply (one loop, the connection's policy, one log row).
        result = executor.execute(
            endpoint,
            params=params,
            variables=variables,
            trigger="rule",
            conversation=self.conversation_context(),
            on_error=action.on_error,
        )
        trace["attempts"] = result.attempts
        return result

    def _on_error(self, rule, action, state, depth, trace) -> None:
        policy = action.on_error
        if policy == OnError.CONTINUE:
            return
        if policy == OnError.BRANCH and depth < MAX_BRANCH_DEPTH:
            trace["branch"] = True
            self._run_actions(rule, list(action.branch_children), state, depth=depth + 1)
            raise _Stop
        # fail, and retry once its attempts are used up
        trace["stopped"] = True
        if rule.fallback_text:
            self.result.replies.append(Reply(rule.fallback_text, rule, "fallback", {"reason": "an API call failed"}))
        raise _Stop


def evaluate_message(conversation: Conversation, text: str, *, dry_run: bool = False) -> EngineResult:
    """Evaluate one visitor message against the tenant's rules.

    Live: runs the matching rules' actions, then records the visitor message, the variables they
    changed and one assistant message per reply (each naming its rule). `conversation` is the
    snapshot of the variables the rules read: load it for this message (as the views do). `dry_run=True`: the same walk
    with requests only rendered (`integrations.executor.prepare`), nothing sent and nothing saved;
    `conversation` may be an unsaved instance.
    """
    if dry_run:
        return _run(_Evaluation(conversation, text, dry_run=True))
    visitor_message = Message(
        tenant=conversation.tenant, conversation=conversation, role=MessageRole.VISITOR, text=text
    )
    evaluation = _Evaluation(conversation, text, dry_run=False, visitor_message=visitor_message)
    try:
        result = _run(evaluation)
    except TemplateFailed:
        if not visitor_message._state.adding:
            visitor_message.delete()  # nothing of the refused message stays in the conversation
        raise
    outcome = (result.changed, result.replies, evaluation.tool_messages)
    result.messages, result.variables = transcript.persist(conversation, visitor_message, outcome)
    return result


def _run(evaluation: _Evaluation) -> EngineResult:
    try:
        return evaluation.run()
    except templating.TemplateError as exc:
        raise TemplateFailed(f"A rule's template could not be rendered: {exc}") from None
