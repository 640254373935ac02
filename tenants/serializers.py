from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from tenants.api import StrictModelSerializer
from tenants.models import ApiKey


class ApiKeySerializer(StrictModelSerializer):
    class Meta:
        model = ApiKey
        fields = [
            "id", "name", "role", "prefix", "created_at", "last_used_at", "revoked_at", "expires_at", "is_active",
            "rate_limit",
        ]  # fmt: skip
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at", "is_active"]

    is_active = serializers.BooleanField(read_only=True)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value


class ApiKeyUpdateSerializer(ApiKeySerializer):
    """PATCH: a key keeps its role and expiry (make a new key instead); its name and rate limit may change."""

    class Meta(ApiKeySerializer.Meta):
        read_only_fields = [f for f in ApiKeySerializer.Meta.fields if f not in ("name", "rate_limit")]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """The create response: the only one that carries the raw key."""

    key = serializers.CharField(read_only=True)

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(read_only=True)
