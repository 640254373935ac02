"""REST resources: /api/v1/credentials, /api/v1/connections, /api/v1/endpoints (+ their test consoles)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from integrations import consoles, signing
from integrations.models import Connection, Credential, Endpoint
from integrations.serializers import (
    ConnectionSerializer,
    ConnectionWrittenSerializer,
    CredentialSerializer,
    EndpointSerializer,
    EndpointTestSerializer,
    SigningSecretSerializer,
)
from tenants.api import error_body
from tenants.models import Role
from tenants.viewsets import TenantModelViewSet


def _users(exc: ProtectedError) -> str:
    """`connections: Billing` or `rules: Order status` (a rule's actions are named by their rule)."""
    kinds: dict[str, set[str]] = {}
    for obj in exc.protected_objects:
        owner = getattr(obj, "rule", None) or obj
        kinds.setdefault(str(owner._meta.verbose_name_plural), set()).add(str(owner))
    return "; ".join(f"{kind}: {', '.join(sorted(names))}" for kind, names in sorted(kinds.items()))


class InUseViewSet(TenantModelViewSet):
    """Deleting an object others still point at (PROTECT) answers 409 naming them, not a 500."""

    def destroy(self, request, *args, **kwargs):
        try:
            with transaction.atomic():  # the audit event of a refused delete goes too
                return super().destroy(request, *args, **kwargs)
        except ProtectedError as exc:
            noun = self.get_queryset().model._meta.verbose_name
            return Response(error_body(f"This {noun} is used by {_users(exc)}"), status.HTTP_409_CONFLICT)


class CredentialViewSet(InUseViewSet):
    """Credentials: `secrets` is write-only (reads back masked); a blank secret in a write keeps the old one."""

    queryset = Credential.objects.all()
    serializer_class = CredentialSerializer


@extend_schema_view(
    create=extend_schema(responses={201: ConnectionWrittenSerializer}),
    update=extend_schema(responses={200: ConnectionWrittenSerializer}),
    partial_update=extend_schema(responses={200: ConnectionWrittenSerializer}),
)
class ConnectionViewSet(InUseViewSet):
    queryset = Connection.objects.select_related("credential")
    serializer_class = ConnectionSerializer
    action_roles = {"test": Role.MEMBER}

    @extend_schema(request=None, responses={200: OpenApiResponse(description="ok, status_code, latency_ms, error")})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Verify the credential works and the base URL answers."""
        return Response(consoles.run_connection_test(self.get_object(), ctx=self.tenant_context))

    @extend_schema(request=None, responses={200: SigningSecretSerializer})
    @action(detail=True, methods=["post"], url_path="signing-secret")
    def signing_secret(self, request, pk=None):
        """Rotate the request-signing secret (turning signing on); the new secret is returned this once."""
        secret = signing.rotate_secret(self.get_object(), ctx=self.tenant_context)
        return Response({"signing_secret": secret})


class EndpointViewSet(InUseViewSet):
    queryset = Endpoint.objects.for_execution()
    serializer_class = EndpointSerializer
    action_roles = {"test": Role.MEMBER}

    @extend_schema(
        request=EndpointTestSerializer,
        responses={200: OpenApiResponse(description="request (redacted), result, say, latency_ms, warnings")},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Make the real call with `params` and `variables` and show everything about it."""
        endpoint = self.get_object()
        serializer = EndpointTestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(consoles.run_endpoint_test(endpoint, **serializer.validated_data, ctx=self.tenant_context))
