"""Writing what a live message did: the variables it changed and its messages, in one short transaction.

The visitor's message is written with the replies (one INSERT for all of them) unless something read
the history mid-evaluation and had it written earlier (rules.engine). Variables: only those the message
changed are merged, under the conversation's row lock, into the current ones, so two messages at once
keep each other's updates; a message that changed none writes only the activity time, without a lock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from rules.models import Conversation, Message, MessageRole, Rule

# What a live message produced, as rules.engine hands it over: the variables it changed, its replies
# (engine.Reply: text, rule, kind, detail) and its API calls ({"rule", "endpoint", "result"}).
Outcome = tuple[dict[str, Any], list[Any], list[dict[str, Any]]]


def persist(
    conversation: Conversation, visitor_message: Message, outcome: Outcome
) -> tuple[list[Message], dict[str, Any]]:
    """Write the message's outcome: the messages it added, oldest first, and the variables now."""
    # A rule deleted while the message was evaluated must not break saving the reply it wrote. The
    # foreign keys are checked at COMMIT (PostgreSQL and SQLite alike): in a transaction of its own the
    # write goes ahead and is redone, with the rules confirmed first, only if one was deleted meanwhile.
    outermost = not transaction.get_connection().in_atomic_block
    visitor_unsaved = visitor_message._state.adding
    try:
        messages, merged = _write(conversation, visitor_message, outcome, confirm=not outermost)
    except IntegrityError:
        if not outermost:
            raise
        visitor_message._state.adding = visitor_unsaved
        messages, merged = _write(conversation, visitor_message, outcome, confirm=True)
    conversation.variables = merged
    if any(reply.kind == "agent" for reply in outcome[1]):
        # An agent saved its own messages (utterances, tool calls) during the evaluation.
        since = conversation.messages.filter(created_at__gte=visitor_message.created_at)
        return list(since.order_by("created_at", "id")), merged
    return [visitor_message, *messages], merged


def _write(
    conversation: Conversation, visitor_message: Message, outcome: Outcome, *, confirm: bool
) -> tuple[list[Message], dict[str, Any]]:
    with transaction.atomic():
        changed, replies, tool_messages = outcome
        merged = _merge_variables(conversation, changed)
        messages = _new_messages(conversation, visitor_message, replies, tool_messages)
        if confirm:
            _forget_deleted_rules(messages)
        unsaved_visitor = [visitor_message] if visitor_message._state.adding else []
        Message.objects.bulk_create([*unsaved_visitor, *messages])
    return messages, merged


def lock_rule_before_delete(sender: type[Rule], instance: Rule, **kwargs: Any) -> None:
    """Rule's pre_delete receiver (rules.apps): lock the rule's row before its messages are unlinked.

    Django unlinks a deleted rule's messages (SET_NULL) in an UPDATE before the DELETE. A reply whose
    transaction committed between the two would keep the reference and make the delete fail at its
    COMMIT. With the row locked first, a reply is either committed before the UPDATE (and unlinked by
    it) or waits for the delete and is refused, and then saved without the rule (`persist`).
    """
    Rule.objects.select_for_update().filter(pk=instance.pk).values_list("pk", flat=True).first()


def _merge_variables(conversation: Conversation, changed: dict[str, Any]) -> dict[str, Any]:
    if not changed:
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
        return dict(conversation.variables or {})
    locked = Conversation.objects.select_for_update().only("id", "variables").get(pk=conversation.pk)
    merged = {**(locked.variables or {}), **changed}
    Conversation.objects.filter(pk=conversation.pk).update(variables=merged, updated_at=timezone.now())
    return merged


def _forget_deleted_rules(messages: list[Message]) -> None:
    rule_ids = {m.rule_id for m in messages if m.rule_id is not None}
    if rule_ids:
        existing = set(Rule.objects.filter(pk__in=rule_ids).values_list("pk", flat=True))
        for message in messages:
            if message.rule_id not in existing:
                message.rule_id = None


def _new_messages(
    conversation: Conversation, visitor_message: Message, replies: list[Any], tool_messages: list[dict[str, Any]]
) -> list[Message]:
    # Spaced a microsecond apart after the visitor's message so they list in the order they were made.
    at = max(timezone.now(), visitor_message.created_at + timedelta(microseconds=1))
    messages = []
    for call in tool_messages:
        outcome = call["result"]
        messages.append(
            Message(
                tenant=conversation.tenant,
                conversation=conversation,
                role=MessageRole.TOOL,
                text=f"{call['endpoint'].name}: {outcome['status']}",
                rule_id=call["rule"].id,
                data={k: outcome.get(k) for k in ("status", "status_code", "duration_ms", "mapped", "error")},
            )
        )
    for reply in replies:
        if reply.text and reply.kind != "agent":
            messages.append(
                Message(
                    tenant=conversation.tenant,
                    conversation=conversation,
                    role=MessageRole.ASSISTANT,
                    text=reply.text,
                    rule_id=reply.rule.id,
                    data={"kind": reply.kind, **reply.detail} if reply.kind != "text" else None,
                )
            )
    for offset, message in enumerate(messages):
        message.created_at = at + timedelta(microseconds=offset)
    return messages
