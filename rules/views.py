"""REST API for rules, conversations and widget keys (thin adapters over rules.engine/services)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from rules import agents, engine, services
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
    list_compiled_once = True  # the list depends on the tenant alone (tenants.querycache)
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
    """Conversations: members create them, talk in them and change their variables; admins delete.

    With `"agent": <id>` the agent holds the conversation (SPEC §14): the create answer carries its
    first turn, each message is answered by its runtime, and `POST .../end` returns the analysis.
    """

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
        text = serializer.validated_data["text"]
        runtime = agents.agent_runtime()
        if runtime.held_by_agent(conversation):
            return Response(runtime.respond(conversation, text))
        result = engine.evaluate_message(conversation, text)
        return Response(reply_body(result), status=status.HTTP_200_OK)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent_id = serializer.validated_data.pop("agent", None)
        if agent_id is None:
            self.perform_create(serializer)
            return Response(serializer.data, status=status.HTTP_201_CREATED)
        runtime = agents.agent_runtime()
        agent = runtime.check_agent(self.tenant_context.tenant, agent_id)  # before anything is saved
        self.perform_create(serializer)
        turn = runtime.open(serializer.instance, agent)
        body = {**serializer.data, "agent": str(agent_id), **turn}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        """End a conversation held by an agent: the analysis (disposition, summary, sentiment, extracted)."""
        conversation = self.get_object()
        runtime = agents.agent_runtime()
        if not runtime.held_by_agent(conversation):
            raise agents.AgentError("no_agent", "this conversation is not held by an agent")
        return Response(runtime.end(conversation))

    @property
    def action_roles(self) -> dict[str, str]:  # type: ignore[override]  # this resource's table depends on the method
        reading = self.request is not None and self.request.method in permissions.SAFE_METHODS
        return {"destroy": Role.ADMIN, "messages": Role.VIEWER if reading else Role.MEMBER, "end": Role.MEMBER}


class WidgetKeyViewSet(TenantModelViewSet):
    """Publishable chat-widget keys (`swb_pk_…`) and the origins allowed to use them (admin to write)."""

    queryset = WidgetKey.objects.all()
    serializer_class = WidgetKeySerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
