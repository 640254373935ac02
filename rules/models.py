"""Conversations and their messages, rules with their ordered actions, and publishable widget keys."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from rules.checks import action_errors, parse_trigger
from rules.choices import ActionType, OnError, TriggerType
from tenants.models import TenantOwned

__all__ = [
    "SESSION_TOKEN_PREFIX",
    "WIDGET_KEY_PREFIX",
    "ActionType",
    "Channel",
    "Conversation",
    "Message",
    "MessageRole",
    "OnError",
    "Rule",
    "RuleAction",
    "TriggerType",
    "WidgetKey",
    "build_origin_index",
    "new_session_token",
    "new_widget_key",
    "normalize_origin",
    "trigger_shape",
]


class Channel(models.TextChoices):
    WIDGET = "widget"
    VOICE = "voice"
    API = "api", "API"


class Conversation(TenantOwned):
    """One visitor's conversation; its session variables are what rules read and write."""

    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.API)
    visitor_id = models.CharField(max_length=200, blank=True)
    variables = models.JSONField(default=dict, blank=True, help_text="Session variables")
    identity_verified = models.BooleanField(default=False)
    # Widget sessions: the key that opened it and the hash of the session token (the token itself is
    # handed out once and never stored).
    widget_key = models.ForeignKey(
        "WidgetKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    token_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="conversation_tenant_created")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} conversation {str(self.id)[:8]}"

    def template_context(self, variables: dict | None = None) -> dict:
        """`conversation.*` in templates (rules and the executor alike), a plain dict.

        `variables` are the live session variables when a caller holds newer ones than the saved
        `self.variables` (the rule engine while it evaluates a message).
        """
        if variables is None:
            variables = self.variables or {}
        return {
            "id": str(self.id),
            "channel": self.channel,
            "visitor_id": self.visitor_id,
            "identity_verified": self.identity_verified,
            "variables": dict(variables),
        }


class MessageRole(models.TextChoices):
    VISITOR = "visitor"
    ASSISTANT = "assistant"
    TOOL = "tool"
    SYSTEM = "system"


class Message(TenantOwned):
    tenant_parent = "conversation"
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=MessageRole.choices)
    text = models.TextField(blank=True)
    rule = models.ForeignKey(
        "Rule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Rule that replied"
    )
    data = models.JSONField(null=True, blank=True)
    # Several messages are written in one go; the engine spaces their timestamps so the order holds.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class Rule(TenantOwned):
    """A trigger and an ordered list of actions; rules are tried by priority, lowest first."""

    name = models.CharField(max_length=200)
    priority = models.IntegerField(default=100, help_text="Lower runs first")
    is_active = models.BooleanField(default=True)
    continue_matching = models.BooleanField(
        default=False, help_text="After this rule runs, keep trying the rules after it"
    )
    trigger_type = models.CharField(max_length=10, choices=TriggerType.choices, default=TriggerType.REGEX)
    pattern = models.TextField(blank=True, help_text="regex trigger: RE2 syntax, or a /pattern/flags literal")
    flags = models.CharField(max_length=3, blank=True, help_text="regex trigger: any of i, m, s")
    condition = models.TextField(blank=True, help_text="ai trigger: when this is true of the message")
    fallback_text = models.TextField(blank=True, help_text="Reply when the AI or an API call cannot answer")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "created_at"]
        indexes = [models.Index(fields=["tenant", "is_active", "priority"], name="rule_tenant_active_priority")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        trigger = {"type": self.trigger_type}
        if self.trigger_type == TriggerType.REGEX:
            trigger.update(pattern=self.pattern, flags=self.flags)
        elif self.trigger_type == TriggerType.AI:
            trigger["condition"] = self.condition
        try:
            fields = parse_trigger(trigger)
        except ValidationError as exc:
            target = "pattern" if self.trigger_type == TriggerType.REGEX else "condition"
            raise ValidationError({target: exc.messages}) from None
        for name, value in fields.items():
            setattr(self, name, value)

    @property
    def trigger(self) -> dict:
        return trigger_shape(self)


def trigger_shape(rule) -> dict:
    """A rule's trigger in the API's shape (for a Rule or a compiled snapshot of one)."""
    if rule.trigger_type == TriggerType.REGEX:
        return {"type": "regex", "pattern": rule.pattern, "flags": rule.flags}
    if rule.trigger_type == TriggerType.AI:
        return {"type": "ai", "condition": rule.condition}
    return {"type": "always"}


class RuleAction(TenantOwned):
    """One step of a rule. Branch actions of a CALL_API step point at it through `parent`."""

    tenant_parent = "rule"  # the admin's inline formset leaves the tenant unset

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="actions")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="branch_actions",
        help_text="The CALL_API action whose failure runs this one (branch)",
    )
    position = models.PositiveIntegerField(default=0)
    type = models.CharField(max_length=12, choices=ActionType.choices)
    endpoint = models.ForeignKey(
        "integrations.Endpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    params = models.JSONField(default=dict, blank=True, help_text="CALL_API: parameter name → template")
    on_error = models.CharField(max_length=10, choices=OnError.choices, default=OnError.CONTINUE)
    variable = models.CharField(max_length=100, blank=True, help_text="SET_VARIABLE: the variable's name")
    value = models.TextField(blank=True, help_text="SET_VARIABLE: value template")
    template = models.TextField(blank=True, help_text="REPLY_TEXT: reply template")
    instructions = models.TextField(blank=True, help_text="REPLY_AI: what the AI should write")
    # Not a foreign key: rules may not depend on calls (the agent runtime answers through rules.agents).
    agent_id = models.UUIDField(null=True, blank=True, help_text="REPLY_AI: the agent that answers instead")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.position}. {self.type}"

    def clean(self) -> None:
        super().clean()
        errors = action_errors(self)
        if errors:
            raise ValidationError(errors)

    @property
    def in_use_owner(self) -> Rule:
        """What "this endpoint is used by …" names: the rule, which is what users know."""
        return self.rule

    # The engine hangs each action's branch actions here when it loads a rule (not a column).
    branch_children: list[RuleAction]


WIDGET_KEY_PREFIX = "swb_pk_"
SESSION_TOKEN_PREFIX = "swb_ws_"


def new_widget_key() -> str:
    return WIDGET_KEY_PREFIX + secrets.token_urlsafe(24)


def new_session_token() -> str:
    return SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32)


class WidgetKey(TenantOwned):
    """A publishable key for the chat widget: it can open sessions and nothing else.

    Publishable means it is written into web pages, so it is not a secret and reads back in full.
    """

    name = models.CharField(max_length=200)
    key = models.CharField(max_length=64, unique=True, default=new_widget_key, editable=False)
    allowed_origins = models.JSONField(
        default=list, blank=True, help_text='Origins that may use the key, e.g. ["https://shop.example"]'
    )
    is_active = models.BooleanField(default=True)
    # The origins one per line between newlines, so a CORS preflight (which carries no key) can ask
    # "does any active key allow this origin?" with one indexed-free LIKE on every database.
    origin_index = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key[:14]}…)"

    def clean(self) -> None:
        super().clean()
        if not isinstance(self.allowed_origins, list):
            raise ValidationError({"allowed_origins": ['A list of origins, e.g. ["https://shop.example"].']})
        try:
            self.allowed_origins = list(dict.fromkeys(normalize_origin(o) for o in self.allowed_origins))
        except ValueError as exc:
            raise ValidationError({"allowed_origins": [str(exc)]}) from None

    def save(self, *args, **kwargs) -> None:
        self.origin_index = build_origin_index(self.allowed_origins or [])
        if kwargs.get("update_fields") is not None and "allowed_origins" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "origin_index"}
        super().save(*args, **kwargs)

    def allows_origin(self, origin: str) -> bool:
        return origin in (self.allowed_origins or [])


def build_origin_index(origins: list[str]) -> str:
    return "\n" + "\n".join(origins) + "\n" if origins else ""


def normalize_origin(value: str) -> str:
    """`https://Shop.example/` → `https://shop.example`; raises ValueError for anything not an origin."""
    parts = urlsplit(value.strip()) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or "@" in parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"{value!r} is not an origin like https://shop.example")
    return f"{parts.scheme}://{parts.netloc.lower()}"
