"""REST serializers of /api/v1/campaigns; every check is campaigns.validation's (shared with the admin)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from calls.models import Agent, SipTrunk
from campaigns import lifecycle, validation
from campaigns.errors import CampaignError
from campaigns.models import Campaign, CampaignRow
from tenants.api import StrictModelSerializer, TenantScopedPrimaryKeyField

CLEANERS = {
    "calling_window": validation.clean_calling_window,
    "retry": validation.clean_retry,
    "columns": validation.clean_columns,
    "default_region": validation.clean_default_region,
    "timezone": validation.clean_timezone,
    "max_concurrent_calls": validation.clean_max_concurrent_calls,
    "callback_url": validation.clean_callback_url,
    "opt_out_dispositions": validation.clean_opt_out_dispositions,
}


class CampaignSerializer(StrictModelSerializer):
    agent = TenantScopedPrimaryKeyField(queryset=Agent.objects.all())
    sip_trunk = TenantScopedPrimaryKeyField(queryset=SipTrunk.objects.all())
    calling_window = serializers.JSONField(required=False)
    retry = serializers.JSONField(required=False)
    columns = serializers.JSONField(required=False)
    steps = serializers.JSONField(required=False)
    opt_out_dispositions = serializers.JSONField(required=False)
    default_region = serializers.CharField(required=False, allow_blank=True, max_length=10)
    timezone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    callback_url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    max_concurrent_calls = serializers.JSONField(required=False)
    counts = serializers.SerializerMethodField()
    outcomes = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "agent",
            "sip_trunk",
            "status",
            "start_at",
            "end_at",
            "calling_window",
            "default_region",
            "timezone",
            "max_concurrent_calls",
            "retry",
            "columns",
            "steps",
            "callback_url",
            "opt_out_dispositions",
            "counts",
            "outcomes",
            "created_at",
            "updated_at",
            "completed_at",
        ]
        read_only_fields = ["id", "status", "created_at", "updated_at", "completed_at"]

    def get_counts(self, obj: Campaign) -> dict[str, int]:
        return lifecycle.counts(obj)

    def get_outcomes(self, obj: Campaign) -> dict[str, int]:
        return lifecycle.outcomes(obj)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            for name, clean in CLEANERS.items():
                if name in attrs:
                    attrs[name] = clean(attrs[name])
            if "steps" in attrs:
                attrs["steps"] = validation.clean_steps(attrs["steps"], self.context.get("tenant"))
            start_at = attrs.get("start_at", getattr(self.instance, "start_at", None))
            end_at = attrs.get("end_at", getattr(self.instance, "end_at", None))
            validation.clean_schedule(start_at, end_at)
        except CampaignError as exc:
            raise serializers.ValidationError({exc.field or "non_field_errors": [exc.message]}) from None
        return attrs


class CampaignRowSerializer(serializers.ModelSerializer):
    call_status = serializers.CharField(source="call.status", default=None, read_only=True)

    class Meta:
        model = CampaignRow
        fields = [
            "id",
            "row",
            "phone_number",
            "data",
            "status",
            "reason",
            "attempts",
            "next_attempt_at",
            "call",
            "call_status",
            "variables",
            "disposition",
            "extracted",
            "error",
            "updated_at",
        ]
        read_only_fields = fields
