from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from rest_framework import mixins, status
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import health, metrics, services
from tenants.models import ApiKey, Role
from tenants.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeySerializer,
    ApiKeyUpdateSerializer,
    WebhookSecretSerializer,
)
from tenants.viewsets import TenantGenericViewSet


class ApiKeyViewSet(
    TenantGenericViewSet,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """API keys of the tenant (owner only). The create response alone carries the raw key; PATCH changes the
    name and the rate-limit override; DELETE revokes."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    read_role = Role.OWNER
    write_role = Role.OWNER
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_class(self):
        return ApiKeyUpdateSerializer if self.action in ("update", "partial_update") else ApiKeySerializer

    @extend_schema(responses={201: ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ctx = self.tenant_context
        key, raw_key = services.create_api_key(
            ctx.tenant,
            name=serializer.validated_data["name"],
            role=serializer.validated_data.get("role", Role.MEMBER),
            expires_at=serializer.validated_data.get("expires_at"),
            rate_limit=serializer.validated_data.get("rate_limit", ""),
            created_by=ctx.user,
            ctx=ctx,
        )
        key.key = raw_key
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.revoke_api_key(self.get_object(), ctx=self.tenant_context)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookSecretView(APIView):
    """Rotate the tenant's webhook signing secret; the new secret is returned this once."""

    write_role = Role.ADMIN

    @extend_schema(request=None, responses={200: WebhookSecretSerializer})
    def post(self, request):
        secret = services.rotate_webhook_secret(request.auth.tenant, ctx=request.auth)
        return Response({"secret": secret})


def healthz(request):
    """Liveness for load balancers: the process and its database answer (readiness: `readyz`)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Readiness: 200 when the database, the cache and the broker all answer, else 503 naming the failure."""
    ready, checks = health.readiness()
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JsonResponse(body, status=200 if ready else 503, headers={"Cache-Control": "no-store"})


def metrics_view(request):
    """Prometheus text format for this host's processes; `Authorization: Bearer <METRICS_TOKEN>` when set."""
    if not metrics.token_accepted(request.headers.get("Authorization", ""), settings.METRICS_TOKEN):
        response = JsonResponse({"error": "Invalid or missing metrics token"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(
        metrics.exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4, headers={"Cache-Control": "no-store"}
    )
