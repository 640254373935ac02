"""REST API for rules, conversations and widget keys (thin adapters over rules.engine/services)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from rules import engine, services
from rules.models import Conversation, Message, Rule, WidgetKey
from rules.serializers import (
    ConversationMessageSerializer,
    ConversationSerializer,
    DryRunSerializer,
    MessageSerializer,
    RuleSerializer,
    WidgetKeySerializer,
)
from tenants import scoping
from tenants.models import Role
from tenants.viewsets import TenantModelViewSet


class RuleViewSet(TenantModelViewSet):
    """Rules of the tenant, tried by priority (lowest first). Writing needs the admin role."""

    queryset = Rule.objects.all()
    serializer_class = RuleSerializer
    action_roles = {"dry_run": Role.MEMBER}

    @extend_schema(request=DryRunSerializer, responses={200: dict})
    @action(detail=False, methods=["post"], url_path="dry-run")
    def dry_run(self, request):
        """Which rule would match and why, and the actions with their requests rendered — nothing sent or saved."""
        serializer = DryRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tenant = self.tenant_context.tenant
        conversation = None
        if data.get("conversation"):
            conversation = scoping.get_for_tenant_or_404(Conversation, tenant, pk=data["conversation"])
        report = services.dry_run(tenant, data["message"], variables=data.get("variables"), conversation=conversation)
        return Response(report)


def reply_body(result: engine.EngineResult) -> dict:
    visible = [m for m in result.messages if m.role in ("visitor", "assistant")]
    return {
        "reply": result.reply,
        "messages": MessageSerializer(visible, many=True).data,
        "matched_rules": [{"id": str(rule.id), "name": rule.name} for rule in result.matched],
        "variables": result.variables,
    }


class ConversationViewSet(TenantModelViewSet):
    """Conversations: members create them, talk in them and change their variables; admins delete."""

    queryset = Conversation.objects.all()
    serializer_class = ConversationSerializer
    write_role = Role.MEMBER
    audited = False
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(request=ConversationMessageSerializer, responses={200: dict})
    @action(detail=True, methods=["get", "post"])
    def messages(self, request, pk=None):
        """GET: the history (viewer). POST `{"text"}`: the engine's reply (member)."""
        conversation = self.get_object()
        if request.method == "GET":
            queryset = Message.objects.filter(conversation=conversation).select_related("rule")
            page = self.paginate_queryset(queryset)
            return self.get_paginated_response(MessageSerializer(page, many=True).data)
        serializer = ConversationMessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = engine.evaluate_message(conversation, serializer.validated_data["text"])
        return Response(reply_body(result), status=status.HTTP_200_OK)

    @property
    def action_roles(self) -> dict[str, str]:  # type: ignore[override]  # this resource's table depends on the method
        reading = self.request is not None and self.request.method in permissions.SAFE_METHODS
        return {"destroy": Role.ADMIN, "messages": Role.VIEWER if reading else Role.MEMBER}


class WidgetKeyViewSet(TenantModelViewSet):
    """Publishable chat-widget keys (`swb_pk_…`) and the origins allowed to use them (admin to write)."""

    queryset = WidgetKey.objects.all()
    serializer_class = WidgetKeySerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
