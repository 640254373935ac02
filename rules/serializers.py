from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rules import definitions
from rules.models import Conversation, Message, Rule, WidgetKey, normalize_origin
from tenants.api import StrictModelSerializer, StrictSerializer


def _django_errors(exc: DjangoValidationError) -> list[str]:
    return exc.messages


def _one_of_types(keys: dict) -> dict:
    """The OpenAPI shape of a `{"type": ..., ...}` object (rules.definitions validates it in full)."""
    names = sorted({key for allowed in keys.values() for key in allowed} - {"type"})
    return {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string", "enum": [str(t) for t in keys]}, **{n: {} for n in names}},
        "additionalProperties": False,
    }


@extend_schema_field(_one_of_types(definitions.TRIGGER_KEYS))
class TriggerField(serializers.JSONField):
    pass


@extend_schema_field({"type": "array", "items": _one_of_types(definitions.ACTION_KEYS)})
class ActionsField(serializers.JSONField):
    pass


class RuleSerializer(StrictModelSerializer):
    """A rule in SPEC §13's shape: `trigger` and `actions` are JSON, written and read whole."""

    trigger = TriggerField()
    actions = ActionsField(required=False)

    class Meta:
        model = Rule
        fields = [
            "id",
            "name",
            "priority",
            "is_active",
            "continue_matching",
            "trigger",
            "actions",
            "fallback_text",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_trigger(self, value):
        try:
            return definitions.parse_trigger(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_django_errors(exc)) from None

    def validate_actions(self, value):
        try:
            return definitions.parse_actions(value, self.context["tenant"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_django_errors(exc)) from None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["trigger"] = instance.trigger
        data["actions"] = definitions.describe_actions(instance)
        return data

    def create(self, validated_data):
        actions = validated_data.pop("actions", [])
        validated_data.update(validated_data.pop("trigger"))
        return definitions.save_rule(Rule(), validated_data, actions)

    def update(self, instance, validated_data):
        actions = validated_data.pop("actions", None)
        validated_data.update(validated_data.pop("trigger", {}))
        return definitions.save_rule(instance, validated_data, actions)


class DryRunSerializer(StrictSerializer):
    message = serializers.CharField(max_length=settings.MESSAGE_MAX_CHARS, trim_whitespace=False)
    variables = serializers.DictField(required=False, default=dict)
    conversation = serializers.UUIDField(required=False, help_text="Use this conversation's variables and channel")


class MessageSerializer(serializers.ModelSerializer):
    rule = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "role", "text", "rule", "data", "created_at"]

    def get_rule(self, message) -> dict | None:
        if message.rule_id is None:
            return None
        name = message.rule.name if message.rule is not None else None
        return {"id": str(message.rule_id), "name": name}


def check_variables(value: Any) -> None:
    if not isinstance(value, dict):
        raise serializers.ValidationError("variables must be an object")
    if len(json.dumps(value, default=str)) > settings.WIDGET_VARIABLES_MAX_BYTES:
        raise serializers.ValidationError(f"variables must be at most {settings.WIDGET_VARIABLES_MAX_BYTES} bytes")


class ConversationSerializer(StrictModelSerializer):
    variables = serializers.JSONField(required=False, validators=[check_variables])
    agent = serializers.UUIDField(
        write_only=True, required=False, help_text="An agent to hold the conversation (variables are its metadata)"
    )

    class Meta:
        model = Conversation
        fields = ["id", "channel", "visitor_id", "variables", "identity_verified", "agent", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_channel(self, value):
        if self.instance is not None and value != self.instance.channel:
            raise serializers.ValidationError("channel cannot change")
        return value


class ConversationMessageSerializer(StrictSerializer):
    text = serializers.CharField(max_length=settings.MESSAGE_MAX_CHARS, trim_whitespace=True)


class WidgetKeySerializer(StrictModelSerializer):
    """A publishable widget key; `key` goes into web pages, so it reads back in full."""

    allowed_origins = serializers.ListField(child=serializers.CharField(), required=False, max_length=50)

    class Meta:
        model = WidgetKey
        fields = ["id", "name", "key", "allowed_origins", "is_active", "created_at"]
        read_only_fields = ["id", "key", "created_at"]

    def validate_allowed_origins(self, value):
        try:
            return list(dict.fromkeys(normalize_origin(origin) for origin in value))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


# The widget API's shapes (/widget/v1/, rules.widget_views): for its OpenAPI description; the views
# validate bodies themselves, with the widget's own error messages.


class WidgetSessionOpenSerializer(StrictSerializer):
    widget_key = serializers.CharField(help_text="The publishable key, `swb_pk_…`")
    variables = serializers.DictField(required=False, help_text="The page's context (at most 8 KiB of JSON)")
    visitor_id = serializers.CharField(required=False, max_length=200)


class WidgetSessionSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    token = serializers.CharField(help_text="The session token, `swb_ws_…`: returned this once")


class WidgetVisitorMessageSerializer(StrictSerializer):
    text = serializers.CharField(max_length=settings.MESSAGE_MAX_CHARS)


class WidgetMessageSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    role = serializers.CharField(help_text="`visitor` or `assistant`")
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class WidgetHistorySerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    messages = WidgetMessageSerializer(many=True)


class WidgetReplySerializer(WidgetHistorySerializer):
    reply = serializers.CharField(help_text="The assistant's answer", allow_blank=True)
