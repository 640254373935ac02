"""REST serializers of /api/v1/agents and /api/v1/sip-trunks (configuration, admin role to write)."""

from __future__ import annotations

from rest_framework import serializers

from calls import services, validation
from calls.dialers import DEFAULT_DIALER, dialer_names
from calls.models import Agent, SipTrunk
from integrations.models import Endpoint
from tenants.api import StrictModelSerializer, StrictSerializer, TenantScopedPrimaryKeyField, TenantUniqueMixin


class AgentSerializer(TenantUniqueMixin, StrictModelSerializer):
    tools = TenantScopedPrimaryKeyField(
        queryset=Endpoint.objects.all(), many=True, required=False, help_text="Endpoint ids the agent may use as tools"
    )

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "agent_code",
            "status",
            "prompt",
            "voice",
            "language",
            "input_schema",
            "tools",
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
        return attrs


class SipTrunkSerializer(StrictModelSerializer):
    dialer = serializers.ChoiceField(choices=dialer_names(), default=DEFAULT_DIALER)
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
        if "dialer_config" in attrs or "dialer" in attrs or self.instance is None:
            current = self.instance.dialer_config if self.instance else {}
            attrs["dialer_config"] = validation.clean_dialer_config(dialer, attrs.get("dialer_config", current))
        return attrs


class PlaceCallSerializer(StrictSerializer):
    """`POST /integration/v1/calls`, for the OpenAPI schema: calls.validation.validate_call_request checks it
    (in SPEC §9's order, with its exact messages)."""

    phone_number = serializers.CharField(help_text="E.164, e.g. +14155552671")
    agent_id = serializers.UUIDField()
    sip_trunk_id = serializers.UUIDField()
    metadata = serializers.DictField(required=False, help_text="Must hold the agent's required fields")
    callback_url = serializers.URLField(required=False, help_text="Status updates are POSTed here, signed")
