"""Rules service functions shared by the REST API, the admin pages and the widget API."""

from __future__ import annotations

from rules import engine
from rules.models import Channel, Conversation, Message, MessageRole, WidgetKey, new_session_token
from tenants.secrets import hash_token


def dry_run(tenant, message: str, *, variables: dict | None = None, conversation: Conversation | None = None) -> dict:
    """What `message` would do: the rules tried and why, the actions with their requests rendered.

    Nothing is sent and nothing is saved. With `conversation`, its variables (overridden by
    `variables`) and channel are used; the conversation itself is not touched.
    """
    probe = Conversation(tenant=tenant, channel=Channel.API, variables={})
    if conversation is not None:
        probe = Conversation(
            id=conversation.id,
            tenant=tenant,
            channel=conversation.channel,
            visitor_id=conversation.visitor_id,
            identity_verified=conversation.identity_verified,
            variables=dict(conversation.variables or {}),
        )
    probe.variables.update(variables or {})
    return engine.evaluate_message(probe, message, dry_run=True).to_dict()


def open_widget_session(widget_key: WidgetKey, *, variables: dict, visitor_id: str = "") -> tuple[Conversation, str]:
    """A widget conversation and its session token (returned this once; only its hash is stored)."""
    token = new_session_token()
    conversation = Conversation.objects.create(
        tenant_id=widget_key.tenant_id,
        channel=Channel.WIDGET,
        visitor_id=visitor_id,
        variables=variables,
        widget_key=widget_key,
        token_hash=hash_token(token),
    )
    return conversation, token


def start_conversation(tenant, *, channel: str, variables: dict | None = None, visitor_id: str = "") -> Conversation:
    """A new conversation of `tenant` whose session variables are `variables` (e.g. a call's metadata)."""
    return Conversation.objects.create(
        tenant=tenant, channel=channel, visitor_id=visitor_id[:200], variables=dict(variables or {})
    )


def record_tool_message(conversation: Conversation, *, text: str, data: dict) -> Message:
    """Log an agent tool call in the conversation's history (a `tool` message; `data` must hold no secret)."""
    return Message.objects.create(
        tenant_id=conversation.tenant_id, conversation=conversation, role=MessageRole.TOOL, text=text, data=data
    )
