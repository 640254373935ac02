"""Admin of campaigns: the campaign with its progress, upload (CSV/XLSX), action buttons and results
download; rows (read-only, filterable). Every check and action is the REST API's service function."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from campaigns import importing, lifecycle, results, validation
from campaigns.errors import CampaignError
from campaigns.models import Campaign, CampaignRow, RowStatus
from campaigns.serializers import CLEANERS
from tenants import scoping
from tenants.admin import ReadOnlyAdminMixin, TenantScopedAdmin
from tenants.models import Role, role_at_least

ACTIONS = {"start": lifecycle.start, "pause": lifecycle.pause, "resume": lifecycle.resume, "cancel": lifecycle.cancel}


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "tenant",
            "name",
            "agent",
            "sip_trunk",
            "start_at",
            "end_at",
            "calling_window",
            "default_region",
            "timezone",
            "max_concurrent_calls",
            "retry",
            "columns",
            "steps",
            "callback_url",
            "opt_out_dispositions",
        ]

    def clean(self):
        cleaned = super().clean()
        tenant = cleaned.get("tenant") or (self.instance.tenant if self.instance.tenant_id else None)
        try:
            for name, clean in CLEANERS.items():
                if name in cleaned:
                    cleaned[name] = clean(cleaned[name])
            if "steps" in cleaned:
                cleaned["steps"] = validation.clean_steps(cleaned["steps"], tenant)
            validation.clean_schedule(cleaned.get("start_at"), cleaned.get("end_at"))
        except CampaignError as exc:
            field = exc.field if exc.field in self.fields else None
            raise ValidationError({field: exc.message} if field else exc.message) from None
        return cleaned


class UploadForm(forms.Form):
    file = forms.FileField(help_text="CSV (UTF-8, header row, , or ;) or XLSX (first sheet)")


@admin.register(Campaign)
class CampaignAdmin(TenantScopedAdmin):
    form = CampaignForm
    list_display = ["name", "status", "progress", "agent", "sip_trunk", "created_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    readonly_fields = ["status", "progress", "counts_table", "completed_at"]
    change_form_template = "campaigns/change_form.html"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/upload/", wrap(self.upload_view), name="campaigns_campaign_upload"),
            path("<path:object_id>/results.csv", wrap(self.results_view), name="campaigns_campaign_results"),
            path("<path:object_id>/do/<str:verb>/", wrap(self.action_view), name="campaigns_campaign_action"),
            *super().get_urls(),
        ]

    def _campaign(self, request, object_id, role: str) -> Campaign:
        try:
            pk = uuid.UUID(str(object_id))
        except ValueError:
            raise Http404("Not found.") from None
        campaign = get_object_or_404(scoping.for_user(Campaign.objects.all(), request.user), pk=pk)
        if not request.user.is_superuser and not role_at_least(
            scoping.role_for_user(request.user, campaign.tenant), role
        ):
            raise Http404("Not found.")
        return campaign

    def _back(self, campaign: Campaign) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def action_view(self, request, object_id, verb: str):
        if request.method != "POST" or verb not in ACTIONS:
            raise Http404("Not found.")
        campaign = self._campaign(request, object_id, Role.ADMIN)
        try:
            ACTIONS[verb](campaign)
        except CampaignError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.audit(request, "changed", campaign)
            self.message_user(request, f"Campaign {verb}: done.", messages.SUCCESS)
        return self._back(campaign)

    def upload_view(self, request, object_id):
        if request.method != "POST":
            raise Http404("Not found.")
        campaign = self._campaign(request, object_id, Role.ADMIN)
        form = UploadForm(request.POST, request.FILES)
        if not form.is_valid():
            self.message_user(request, "Choose a CSV or XLSX file to upload.", messages.ERROR)
            return self._back(campaign)
        upload = form.cleaned_data["file"]
        try:
            if upload.size > importing.upload_limit():
                raise CampaignError(f"an upload is at most {importing.upload_limit() // (1024 * 1024)} MB")
            content = upload.read()
            is_xlsx = upload.name.lower().endswith(".xlsx") or content[:2] == b"PK"
            records = importing.read_xlsx(content) if is_xlsx else importing.read_csv(content)
            report = importing.import_rows(campaign, records)
        except CampaignError as exc:
            self.message_user(request, f"Upload refused: {exc.message}", messages.ERROR)
            return self._back(campaign)
        self.audit(request, "changed", campaign)
        rejected = "; ".join(f"row {r['row']}: {r['error']}" for r in report.rejected[:20])
        more = f" (and {len(report.rejected) - 20} more)" if len(report.rejected) > 20 else ""
        level = messages.WARNING if report.rejected else messages.SUCCESS
        summary = f"{report.accepted} rows accepted, {len(report.rejected)} rejected"
        self.message_user(request, f"{summary}{': ' + rejected + more if rejected else '.'}", level)
        return self._back(campaign)

    def results_view(self, request, object_id):
        campaign = self._campaign(request, object_id, Role.VIEWER)
        response = StreamingHttpResponse(results.stream_results(campaign), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-results.csv"'
        return response

    @admin.display(description="Progress")
    def progress(self, obj: Campaign):
        counts = lifecycle.counts(obj)
        total = sum(counts.values())
        done = total - counts[RowStatus.PENDING] - counts[RowStatus.CALLING]
        percent = round(100 * done / total) if total else 0
        return format_html(
            '<progress class="campaign-progress" max="100" value="{}"></progress> {} / {} ({}%)',
            percent,
            done,
            total,
            percent,
        )

    @admin.display(description="Rows by status")
    def counts_table(self, obj: Campaign):
        url = reverse("admin:campaigns_campaignrow_changelist")
        counts = lifecycle.counts(obj)
        return format_html(
            " · ".join(['<a href="{}?campaign__id__exact={}&status__exact={}">{}: {}</a>'] * len(counts)),
            *[v for status, n in counts.items() for v in (url, obj.pk, status, status, n)],
        )


@admin.register(CampaignRow)
class CampaignRowAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["row", "campaign", "phone_number", "status", "reason", "attempts", "disposition", "next_attempt_at"]
    list_filter = ["status", "reason", ("campaign", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["phone_number"]
    list_select_related = ["campaign"]
