"""HTTP adapters: /api/v1/agents and /api/v1/sip-trunks (CRUD), and the public call API /integration/v1/."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from calls import representations, services
from calls import tools as tool_services
from calls.models import ActiveStatus, Agent, Call, CallStatus, SipTrunk
from calls.serializers import AgentSerializer, SipTrunkSerializer
from tenants import scoping
from tenants.api import Pagination, error_body
from tenants.models import Role
from tenants.viewsets import TenantGenericViewSet, TenantModelViewSet


class InUse(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This object is used by calls; set its status to inactive instead of deleting it."


class CallsConfigViewSet(TenantModelViewSet):
    """TenantModelViewSet whose writes go through TenantGenericViewSet's scoped, audited hooks.

    (DRF's mixins come first in TenantModelViewSet's bases, so their plain perform_* would win and the
    tenant would not be set on create.) Deleting an object that calls refer to answers 409.
    """

    def perform_create(self, serializer) -> None:
        TenantGenericViewSet.perform_create(self, serializer)

    def perform_update(self, serializer) -> None:
        TenantGenericViewSet.perform_update(self, serializer)

    def perform_destroy(self, instance) -> None:
        try:
            with transaction.atomic():
                TenantGenericViewSet.perform_destroy(self, instance)
        except (ProtectedError, RestrictedError):
            raise InUse() from None


class AgentViewSet(CallsConfigViewSet):
    """AI agents of the tenant (admin to write, viewer to read)."""

    queryset = Agent.objects.prefetch_related("tools")
    serializer_class = AgentSerializer

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


def _moment(value: str, *, end_of_day: bool) -> datetime | None:
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            return None
        moment = datetime.combine(day, time.max if end_of_day else time.min)
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


class CallListCreateView(IntegrationView):
    method_roles = {"POST": Role.MEMBER}

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, many=True, enum=CallStatus.values),
            OpenApiParameter("agent_id", str),
            OpenApiParameter("sip_trunk_id", str),
            OpenApiParameter("created_after", str, description="ISO 8601 date or date-time (inclusive)"),
            OpenApiParameter("created_before", str, description="ISO 8601 date or date-time (inclusive)"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: OpenApiTypes.OBJECT},
        summary="List calls",
    )
    def get(self, request):
        try:
            calls = self._filtered(request.query_params)
        except ValueError as exc:
            return Response(error_body(str(exc)), status=status.HTTP_400_BAD_REQUEST)
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

    def _filtered(self, params):
        calls = scoping.for_tenant(Call, self.tenant).order_by("-created_at", "pk")
        statuses = [s for value in params.getlist("status") for s in value.split(",") if s]
        bad = [s for s in statuses if s not in CallStatus.values]
        if bad:
            raise ValueError(f"status must be one of: {', '.join(CallStatus.values)}")
        if statuses:
            calls = calls.filter(status__in=statuses)
        for param, field in (("agent_id", "agent"), ("sip_trunk_id", "sip_trunk")):
            if params.get(param):
                try:
                    calls = calls.filter(**{field: uuid.UUID(params[param])})
                except ValueError:
                    raise ValueError(f"{param} must be a UUID") from None
        for param, lookup, end in (("created_after", "gte", False), ("created_before", "lte", True)):
            if params.get(param):
                moment = _moment(params[param], end_of_day=end)
                if moment is None:
                    raise ValueError(f"{param} must be an ISO 8601 date or date-time")
                calls = calls.filter(**{f"created_at__{lookup}": moment})
        return calls

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={201: OpenApiTypes.OBJECT, 429: OpenApiTypes.OBJECT},
        summary="Place a call",
    )
    def post(self, request):
        try:
            result = services.trigger_call(
                self.tenant, request.data, idempotency_key=request.headers.get("Idempotency-Key")
            )
        except services.CallRequestError as exc:
            return Response(error_body(exc.message), status=exc.status)
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
