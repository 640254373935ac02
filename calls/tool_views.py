"""HTTP adapter of agent tools: POST /api/v1/tools/{tool_name}/invoke (member). Logic: `calls.tools`."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from calls import tools
from rules.models import Conversation
from tenants import scoping
from tenants.api import StrictSerializer
from tenants.models import Role


class ToolInvocationSerializer(StrictSerializer):
    conversation_id = serializers.UUIDField(help_text="The conversation the tool runs in (its variables, its log)")
    arguments = serializers.DictField(required=False, default=dict, help_text="The tool's arguments (its schema)")
    confirmed = serializers.BooleanField(required=False, default=False, help_text="The caller confirmed the action")


class ToolInvokeView(APIView):
    """Run one of the tenant's tools in a conversation, its context burden enforced on the server."""

    read_role = Role.MEMBER
    method_roles = {"POST": Role.MEMBER}

    @extend_schema(
        request=ToolInvocationSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The result (SPEC §4 shape) plus `say`"),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Bad arguments, naming the argument"),
            403: OpenApiResponse(OpenApiTypes.OBJECT, description="Caller not verified, or role too low"),
            404: OpenApiResponse(OpenApiTypes.OBJECT, description="Unknown tool or conversation"),
            409: OpenApiResponse(OpenApiTypes.OBJECT, description="Confirmation required: `confirmation_prompt`"),
        },
        summary="Invoke an agent tool",
    )
    def post(self, request, tool_name: str):
        serializer = ToolInvocationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tenant = request.auth.tenant
        conversation = scoping.get_for_tenant_or_404(Conversation, tenant, pk=data["conversation_id"])
        # A refusal (tools.ToolRefused) or an unknown tool (NotFound) is answered by tenants.api.exception_handler.
        outcome = tools.invoke_tool(
            tenant, tool_name, conversation, data["arguments"], data["confirmed"], ctx=request.auth
        )
        return Response(outcome.to_dict())
