"""HTTP adapters: /api/v1/agents and /api/v1/sip-trunks (CRUD), and the public call API /integration/v1/."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from calls import dnc, listing, representations, services
from calls import tools as tool_services
from calls.models import ActiveStatus, Agent, Call, CallStatus, DoNotCallEntry, SipTrunk
from calls.serializers import AgentSerializer, DoNotCallSerializer, PlaceCallSerializer, SipTrunkSerializer
from tenants import scoping
from tenants.api import ErrorSerializer, Pagination
from tenants.models import Role
from tenants.validation import InUse
from tenants.viewsets import TenantGenericViewSet, TenantModelViewSet

IN_USE_MESSAGE = "This object is used by calls; set its status to inactive instead of deleting it."


class CallsConfigViewSet(TenantModelViewSet):
    """Agents and trunks: deleting one that calls refer to answers 409 (set it inactive instead)."""

    def in_use(self, instance, exc) -> InUse:
        return InUse(IN_USE_MESSAGE)


class AgentViewSet(CallsConfigViewSet):
    """AI agents of the tenant (admin to write, viewer to read)."""

    queryset = Agent.objects.all()
    serializer_class = AgentSerializer
    list_compiled_once = True  # get_queryset reads the tenant and the action only

    def get_queryset(self):
        # Reading: the tool ids come in the agents' own query. Writing: the serializer reads the
        # relation after saving it (an id list selected before the write would be stale).
        queryset = super().get_queryset()
        return listing.with_tool_ids(queryset) if self.action in ("list", "retrieve") else queryset

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description='{"tools": [OpenAI function tools + burden]}')
        },
    )
    @action(detail=True, methods=["get"], url_path="tools")
    def agent_tools(self, request, pk=None):
        """The agent's tools in OpenAI function-calling form, with burden, guidance and voice messages."""
        return Response({"tools": tool_services.list_tools(self.get_object())})


class SipTrunkViewSet(CallsConfigViewSet):
    """SIP trunks of the tenant: caller id, capacity limits and dialer back end (admin to write)."""

    queryset = SipTrunk.objects.all()
    serializer_class = SipTrunkSerializer
    list_compiled_once = True


class DoNotCallViewSet(
    TenantGenericViewSet,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
):
    """The do-not-call list: numbers never called, by the call API or a campaign (admin to write)."""

    queryset = DoNotCallEntry.objects.all()
    serializer_class = DoNotCallSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        number = self.request.query_params.get("phone_number") if self.action == "list" else None
        if number:
            queryset = queryset.filter(phone_number=dnc.normalise_number(number) or number)
        return queryset


# --- /integration/v1 -------------------------------------------------------------------------------


class IntegrationView(APIView):
    read_role = Role.VIEWER

    @property
    def tenant(self):
        return self.request.auth.tenant


class AgentListView(IntegrationView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Active agents")
    def get(self, request):
        agents = scoping.for_tenant(Agent, self.tenant).filter(status=ActiveStatus.ACTIVE)
        return Response({"agents": [representations.agent(a) for a in agents]})


class SipTrunkListView(IntegrationView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Active SIP trunks")
    def get(self, request):
        trunks = scoping.for_tenant(SipTrunk, self.tenant).filter(status=ActiveStatus.ACTIVE)
        return Response({"sip_trunks": [representations.sip_trunk(t) for t in trunks]})


class CallListCreateView(IntegrationView):
    method_roles = {"POST": Role.MEMBER}

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, many=True, enum=CallStatus.values),
            OpenApiParameter("agent", str, description="Agent id or agent_code"),
            OpenApiParameter("agent_id", str),
            OpenApiParameter("sip_trunk_id", str),
            OpenApiParameter("created_after", str, description="ISO 8601 date or date-time (inclusive)"),
            OpenApiParameter("created_before", str, description="ISO 8601 date or date-time (inclusive)"),
            OpenApiParameter("date", str, description="One UTC day, YYYY-MM-DD"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: OpenApiTypes.OBJECT},
        summary="List calls",
    )
    def get(self, request):
        params = request.query_params
        # `status` may repeat and may list several, comma-separated: that is query-string syntax.
        statuses = [s for value in params.getlist("status") for s in value.split(",") if s]
        filters = {name: params[name] for name in listing.FILTERS if params.get(name)}
        calls = listing.filter_calls(self.tenant, statuses=statuses, **filters)
        paginator = Pagination()
        page = paginator.paginate_queryset(calls, request, view=self)
        now = timezone.now()
        return Response(
            {
                "calls": [representations.call_list_item(c, now) for c in page],
                "count": paginator.page.paginator.count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
            }
        )

    @extend_schema(
        request=PlaceCallSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255}, OpenApiParameter.HEADER
            )
        ],
        responses={
            201: OpenApiTypes.OBJECT,
            400: ErrorSerializer,
            404: OpenApiResponse(ErrorSerializer, description="Agent or SIP trunk not found"),
            422: OpenApiResponse(ErrorSerializer, description="Idempotency-Key reused with another body"),
            429: OpenApiTypes.OBJECT,
        },
        summary="Place a call",
    )
    def post(self, request):
        # META rather than request.headers: the header read without building every header's dict.
        key = request.META.get("HTTP_IDEMPOTENCY_KEY")
        result = services.trigger_call(self.tenant, request.data, idempotency_key=key)
        if not result.accepted:
            body = {"error": result.message, "call_id": str(result.call.pk), "status": "rejected"}
            return Response(body, status=429, headers={"Retry-After": str(result.retry_after)})
        headers = {"Location": representations.poll_url(result.call)}
        if result.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(representations.triggered(result.call), status=status.HTTP_201_CREATED, headers=headers)


class CallStatusView(IntegrationView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Status of a call")
    def get(self, request, call_id: str):
        call = scoping.get_for_tenant_or_404(Call, self.tenant, pk=call_id)
        return Response(representations.call_status(call))


class CallTranscriptView(IntegrationView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Transcript of a call")
    def get(self, request, call_id: str):
        """Every utterance and tool call of the call's conversation, in order (empty before it is answered)."""
        call = scoping.get_for_tenant_or_404(Call, self.tenant, pk=call_id)
        messages = call.conversation.messages.order_by("created_at", "id") if call.conversation is not None else []
        return Response(representations.transcript(call, messages))
