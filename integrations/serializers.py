"""REST shapes of credentials, connections and endpoints: thin adapters over `validation` and `auth`.

Secret maps (`secrets`, `default_headers`, endpoint `headers`) are write-only: they read back masked,
and a blank value in a write keeps the stored one.
"""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from integrations import auth, signing, validation
from integrations.auth import credential_state, oauth
from integrations.models import CONNECTION_FIELDS, ENDPOINT_FIELDS, Connection, Credential, Endpoint, default_retry
from integrations.secrets import masked, merge_secret_map
from tenants.api import StrictModelSerializer, StrictSerializer, TenantScopedPrimaryKeyField, TenantUniqueMixin


class SecretMapField(serializers.JSONField):
    """A map of secrets: any JSON object in, masked values out."""

    reads_without_context = True  # masks the value alone (tenants.api.ReadsWithSharedFields)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object.")
        return data

    def to_representation(self, value):
        return masked(value)


class CredentialSerializer(TenantUniqueMixin, StrictModelSerializer):
    type = serializers.ChoiceField(choices=[])
    secrets = SecretMapField(required=False, help_text="Write-only map of secret values; reads back masked")
    authorization = serializers.SerializerMethodField(
        help_text="oauth2_authorization_code only: status (connected, reconnect_needed, not_connected), "
        "detail, and the redirect_uri to register at the provider"
    )

    class Meta:
        model = Credential
        fields = ["id", "name", "type", "config", "secrets", "description", "authorization", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_authorization(self, obj) -> dict | None:
        if not getattr(auth.get_type(obj.type), "connectable", False):
            return None
        status, detail = oauth.connection_status(obj)
        request = self.context.get("request")
        path = reverse("admin:integrations_credential_oauth2_callback")
        return {
            "status": status,
            "detail": detail,
            "redirect_uri": request.build_absolute_uri(path) if request else path,
        }

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        credential_state.save_settings(instance)
        return instance

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = auth.type_choices()

    def validate(self, attrs):
        instance = self.instance
        self.check_unique_in_tenant(attrs, "name", "A credential with this name already exists.")
        kind = attrs.get("type", instance.type if instance else "none")
        cls = auth.get_type(kind)
        config = attrs.get("config", instance.config if instance and instance.type == kind else {})
        known = {f.name for f in cls.secret_fields}
        old = {k: v for k, v in ((instance.secrets or {}) if instance else {}).items() if k in known}
        secrets = merge_secret_map(old, attrs.get("secrets", {}), partial_keys=True)
        try:
            attrs["config"], attrs["secrets"] = cls.clean({} if config is None else config, secrets)
        except auth.CredentialInvalid as exc:
            raise serializers.ValidationError(exc.errors) from None
        attrs["type"] = kind
        return attrs


class RetrySerializer(StrictSerializer):
    max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False)
    base_delay = serializers.FloatField(min_value=0, max_value=300, required=False)
    max_delay = serializers.FloatField(min_value=0, max_value=300, required=False)
    retry_statuses = serializers.ListField(child=serializers.IntegerField(min_value=100, max_value=599), required=False)
    retry_on_connection_errors = serializers.BooleanField(required=False)

    def to_representation(self, instance):
        return {**default_retry(), **(instance or {})}


class ConnectionSerializer(TenantUniqueMixin, StrictModelSerializer):
    credential = TenantScopedPrimaryKeyField(queryset=Credential.objects.all(), required=False, allow_null=True)
    default_headers = SecretMapField(required=False, help_text="Write-only map of header templates; reads back masked")
    retry = RetrySerializer(required=False)

    class Meta:
        model = Connection
        fields = ["id", *CONNECTION_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    # The response of the write that turns `sign_requests` on carries the new secret, this once.
    def create(self, validated_data):
        instance = super().create(validated_data)
        instance.new_signing_secret = signing.settle_secret(instance, was_signing=False)
        return instance

    def update(self, instance, validated_data):
        was_signing = instance.sign_requests
        instance = super().update(instance, validated_data)
        instance.new_signing_secret = signing.settle_secret(instance, was_signing=was_signing)
        return instance

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if getattr(instance, "new_signing_secret", None):
            data["signing_secret"] = instance.new_signing_secret
        return data

    def validate(self, attrs):
        instance = self.instance
        if "default_headers" in attrs:
            old = instance.default_headers if instance else {}
            attrs["default_headers"] = merge_secret_map(old, attrs["default_headers"], partial_keys=False)
        if "retry" in attrs:
            attrs["retry"] = {**(instance.retry_policy if instance else default_retry()), **attrs["retry"]}
        errors = validation.connection_errors(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class EndpointSerializer(TenantUniqueMixin, StrictModelSerializer):
    connection = TenantScopedPrimaryKeyField(queryset=Connection.objects.all())
    headers = SecretMapField(required=False, help_text="Write-only map of header templates; reads back masked")

    class Meta:
        model = Endpoint
        fields = ["id", *ENDPOINT_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs):
        instance = self.instance
        self.check_unique_in_tenant(attrs, "tool_name", "An endpoint with this tool name already exists.")
        if "headers" in attrs:
            old = instance.headers if instance else {}
            attrs["headers"] = merge_secret_map(old, attrs["headers"], partial_keys=False)
        current = {f: getattr(instance, f) for f in self.Meta.fields if instance and hasattr(instance, f)}
        data = {**current, **attrs}
        errors = validation.endpoint_errors(data)
        if errors:
            raise serializers.ValidationError(errors)
        if "parameters" in attrs:
            attrs["parameters"] = data["parameters"]
        return attrs


class SigningSecretSerializer(serializers.Serializer):
    signing_secret = serializers.CharField(read_only=True)


class ConnectionWrittenSerializer(ConnectionSerializer):
    """Documents the write responses (never used to read input): `signing_secret` appears only in the one
    that turned signing on, so it is declared optional rather than read-only (read-only means required)."""

    signing_secret = serializers.CharField(
        required=False, help_text="Only when this write turned sign_requests on: shown once"
    )

    class Meta(ConnectionSerializer.Meta):
        fields = [*ConnectionSerializer.Meta.fields, "signing_secret"]


class EndpointTestSerializer(StrictSerializer):
    params = serializers.DictField(required=False, default=dict)
    variables = serializers.DictField(required=False, default=dict)
    row = serializers.DictField(required=False, default=dict, help_text="A dataset row, as a campaign step sees it")
    extracted = serializers.DictField(
        required=False, default=dict, help_text="Values a call's analysis extracted, as an after-call step sees them"
    )
