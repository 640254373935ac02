"""REST serializers of /api/v1/agents and /api/v1/sip-trunks (configuration, admin role to write)."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from calls import dnc, listing, services, validation
from calls.dialers import DEFAULT_DIALER, dialer_names
from calls.models import Agent, DoNotCallEntry, SipTrunk
from integrations.models import Endpoint
from integrations.secrets import merge_secret_map
from integrations.serializers import SecretMapField
from tenants.api import StrictModelSerializer, StrictSerializer, TenantScopedPrimaryKeyField, TenantUniqueMixin


class AgentToolsField(serializers.ManyRelatedField):
    """The agent's tool ids: those `calls.listing.with_tool_ids` selected with the agent (the list and
    the detail), else read through the relation (after a write)."""

    reads_without_context = True  # reads the object alone (tenants.api.ReadsWithSharedFields)

    def get_attribute(self, instance):
        ids = getattr(instance, listing.TOOL_IDS, None)
        return super().get_attribute(instance) if ids is None else ids

    def to_representation(self, iterable):
        return [
            item if isinstance(item, uuid.UUID) else self.child_relation.to_representation(item) for item in iterable
        ]


class AgentSerializer(TenantUniqueMixin, StrictModelSerializer):
    tools = AgentToolsField(
        child_relation=TenantScopedPrimaryKeyField(queryset=Endpoint.objects.all(), required=False),
        required=False,
        help_text="Endpoint ids the agent may use as tools",
    )

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "agent_code",
            "status",
            "prompt",
            "first_message",
            "voice",
            "language",
            "input_schema",
            "tools",
            "analysis",
            "verification",
            "max_turns",
            "max_duration_seconds",
            "end_call_message",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness per tenant is checked in validate() (the tenant is not a field).
        validators: list = []

    def validate_input_schema(self, value) -> dict:
        return validation.clean_input_schema(value)

    def validate(self, attrs: dict) -> dict:
        self.check_unique_in_tenant(attrs, "agent_code", "An agent with this agent_code already exists.")
        schema = attrs.get("input_schema", self.instance.input_schema if self.instance else None) or {}
        verification = attrs.get("verification", self.instance.verification if self.instance else [])
        checks = {
            "analysis": lambda: validation.clean_analysis(attrs["analysis"]),
            "verification": lambda: validation.clean_verification(
                verification, input_fields=schema.get("fields") or []
            ),
            "prompt": lambda: validation.clean_template(attrs["prompt"], "prompt"),
            "first_message": lambda: validation.clean_template(attrs["first_message"], "first_message"),
            "end_call_message": lambda: validation.clean_template(attrs["end_call_message"], "end_call_message"),
            "max_turns": lambda: validation.clean_bound(attrs["max_turns"], "max_turns", validation.MAX_TURNS),
            "max_duration_seconds": lambda: validation.clean_bound(
                attrs["max_duration_seconds"], "max_duration_seconds", validation.MAX_DURATION_SECONDS
            ),
        }
        errors = {}
        for name, check in checks.items():
            # verification is re-checked when input_schema changes: its keys must stay metadata keys
            if name in attrs or (name == "verification" and "input_schema" in attrs):
                try:
                    attrs[name] = check()
                except DjangoValidationError as exc:
                    errors[name] = exc.messages
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class SipTrunkSerializer(StrictModelSerializer):
    dialer = serializers.ChoiceField(choices=dialer_names(), default=DEFAULT_DIALER)
    dialer_secrets = SecretMapField(
        required=False, help_text="Write-only secrets of the dialer (livekit: api_key, api_secret); reads back masked"
    )
    live_channels = serializers.SerializerMethodField()

    class Meta:
        model = SipTrunk
        fields = [
            "id",
            "name",
            "trunk_phone",
            "max_cps",
            "max_channels",
            "status",
            "dialer",
            "dialer_config",
            "dialer_secrets",
            "live_channels",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "live_channels", "created_at", "updated_at"]
        extra_kwargs = {
            name: {"min_value": least, "max_value": most} for name, (least, most) in validation.TRUNK_LIMITS.items()
        }

    def get_live_channels(self, obj: SipTrunk) -> int:
        return services.live_channels(obj)

    def validate_trunk_phone(self, value: str) -> str:
        return validation.clean_trunk_phone(value)

    def validate(self, attrs: dict) -> dict:
        dialer = attrs.get("dialer") or (self.instance.dialer if self.instance else DEFAULT_DIALER)
        if {"dialer_config", "dialer", "dialer_secrets"} & set(attrs) or self.instance is None:
            # Another back end's settings and secrets mean nothing to this one: a switch starts afresh.
            same = self.instance if self.instance is not None and self.instance.dialer == dialer else None
            config = attrs.get("dialer_config", same.dialer_config if same else {})
            stored = same.dialer_secrets if same else {}
            secrets = merge_secret_map(stored, attrs.get("dialer_secrets", {}), partial_keys=True)
            attrs["dialer_config"], attrs["dialer_secrets"] = validation.clean_dialer_settings(dialer, config, secrets)
        return attrs


class PlaceCallSerializer(StrictSerializer):
    """`POST /integration/v1/calls`, for the OpenAPI schema: calls.validation.validate_call_request checks it
    (in SPEC §9's order, with its exact messages)."""

    phone_number = serializers.CharField(help_text="E.164, e.g. +14155552671")
    agent_id = serializers.UUIDField()
    sip_trunk_id = serializers.UUIDField()
    metadata = serializers.DictField(required=False, help_text="Must hold the agent's required fields")
    callback_url = serializers.URLField(required=False, help_text="Status updates are POSTed here, signed")


class DoNotCallSerializer(StrictModelSerializer):
    """A do-not-call entry; POST normalises the number to E.164 (an existing entry is returned as is)."""

    phone_number = serializers.CharField(max_length=64)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    class Meta:
        model = DoNotCallEntry
        fields = ["id", "phone_number", "reason", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_phone_number(self, value: str) -> str:
        normalised = dnc.normalise_number(value)
        if normalised is None:
            raise serializers.ValidationError("phone_number must be a valid phone number in E.164 format")
        return normalised

    def create(self, validated_data):
        entry, _ = dnc.add_number(validated_data["tenant"], validated_data["phone_number"], validated_data["reason"])
        return entry
