"""HTTP adapters of /api/v1/campaigns: CRUD, rows (upload and list), the actions, the results CSV."""

from __future__ import annotations

from django.db import transaction
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from campaigns import importing, lifecycle, results
from campaigns.errors import CampaignError
from campaigns.models import Campaign, CampaignRow, CampaignStatus, RowStatus
from campaigns.serializers import CampaignRowSerializer, CampaignSerializer
from tenants.api import ErrorSerializer, Pagination, error_body
from tenants.errors import ErrorCode
from tenants.parsers import loads_request_json
from tenants.viewsets import TenantModelViewSet

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.PAUSED)


class CampaignViewSet(TenantModelViewSet):
    """Campaigns of the tenant (admin to write, viewer to read); `status` changes only by the actions."""

    queryset = Campaign.objects.select_related("agent", "sip_trunk")
    serializer_class = CampaignSerializer

    def perform_update(self, serializer) -> None:
        if serializer.instance.status not in EDITABLE:
            raise CampaignError("Only a draft or paused campaign can be changed", code=ErrorCode.CONFLICT)
        super().perform_update(serializer)

    def perform_destroy(self, instance) -> None:
        if instance.status == CampaignStatus.RUNNING:
            raise CampaignError(
                "A running campaign cannot be deleted: pause or cancel it first", code=ErrorCode.CONFLICT
            )
        with transaction.atomic():
            super().perform_destroy(instance)

    @extend_schema(
        request={"text/csv": OpenApiTypes.STR, "application/json": OpenApiTypes.OBJECT, XLSX_TYPE: OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("status", str, enum=RowStatus.values)],
        responses={
            200: CampaignRowSerializer(many=True),
            201: OpenApiResponse(OpenApiTypes.OBJECT, description='{"accepted": n, "rejected": [{"row", "error"}]}'),
            400: ErrorSerializer,
            409: ErrorSerializer,
            413: ErrorSerializer,
        },
    )
    @action(detail=True, methods=["get", "post"], url_path="rows", parser_classes=[])
    def rows(self, request, pk=None):
        """GET: the rows (`?status=`); POST: add rows from CSV (`text/csv`), XLSX or JSON `{"rows": [...]}`."""
        campaign = self.get_object()
        if request.method == "GET":
            return self._list_rows(request, campaign)
        report = importing.import_rows(campaign, _records(request))
        self.audit("changed", campaign)
        return Response(report.as_dict(), status=201)

    def _list_rows(self, request, campaign: Campaign) -> Response:
        rows = CampaignRow.objects.filter(campaign=campaign).select_related("call").order_by("row")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in RowStatus.values:
                return Response(error_body(f"status must be one of: {', '.join(RowStatus.values)}"), status=400)
            rows = rows.filter(status=wanted)
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(CampaignRowSerializer(page, many=True).data)

    def _act(self, func) -> Response:
        campaign = func(self.get_object())
        self.audit("changed", campaign)
        return Response(self.get_serializer(campaign).data)

    @extend_schema(request=None, responses={200: CampaignSerializer, 400: ErrorSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """draft or paused → running."""
        return self._act(lifecycle.start)

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """running → paused (calls in progress finish)."""
        return self._act(lifecycle.pause)

    @extend_schema(request=None, responses={200: CampaignSerializer, 400: ErrorSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """paused → running."""
        return self._act(lifecycle.resume)

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: pending rows are skipped (`cancelled`), calls in progress finish."""
        return self._act(lifecycle.cancel)

    @extend_schema(request=None, responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="results.csv")
    def results(self, request, pk=None):
        """Every row with its outcome, as CSV (streamed)."""
        campaign = self.get_object()
        response = StreamingHttpResponse(results.stream_results(campaign), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-results.csv"'
        return response


def _records(request):
    """The upload's rows: CSV for text/csv, else JSON; over CAMPAIGN_UPLOAD_MAX_BYTES → 413."""
    limit = importing.upload_limit()
    raw = request._request.read(limit + 1)  # not request.body: that stops at DATA_UPLOAD_MAX_MEMORY_SIZE
    if len(raw) > limit:
        raise CampaignError(f"an upload is at most {limit // (1024 * 1024)} MB", code=ErrorCode.TOO_LARGE)
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if content_type in ("text/csv", "application/csv"):
        return importing.read_csv(raw)
    if content_type == XLSX_TYPE:
        return importing.read_xlsx(raw)
    if content_type == "application/json":
        try:
            return importing.read_json(loads_request_json(raw))
        except ValueError as exc:
            raise CampaignError(f"malformed JSON: {exc}") from None
    raise CampaignError(
        'send rows as text/csv, an XLSX workbook, or application/json {"rows": [...]}',
        code=ErrorCode.UNSUPPORTED_FORMAT,
    )
