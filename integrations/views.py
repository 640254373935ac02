"""REST resources: /api/v1/credentials, /api/v1/connections, /api/v1/endpoints (+ their test consoles)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
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
from tenants.models import Role
from tenants.viewsets import TenantModelViewSet


class CredentialViewSet(TenantModelViewSet):
    """Credentials: `secrets` is write-only (reads back masked); a blank secret in a write keeps the old one."""

    queryset = Credential.objects.all()
    serializer_class = CredentialSerializer
    list_compiled_once = True  # the lists here depend on the tenant alone (tenants.querycache)


@extend_schema_view(
    create=extend_schema(responses={201: ConnectionWrittenSerializer}),
    update=extend_schema(responses={200: ConnectionWrittenSerializer}),
    partial_update=extend_schema(responses={200: ConnectionWrittenSerializer}),
)
class ConnectionViewSet(TenantModelViewSet):
    queryset = Connection.objects.select_related("credential")
    serializer_class = ConnectionSerializer
    list_compiled_once = True
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


class EndpointViewSet(TenantModelViewSet):
    queryset = Endpoint.objects.for_execution()
    serializer_class = EndpointSerializer
    list_compiled_once = True
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
