"""Rules service functions shared by the REST API, the admin pages and the widget API."""

from __future__ import annotations

from rules import engine
from rules.models import Channel, Conversation, WidgetKey, hash_token, new_session_token


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
