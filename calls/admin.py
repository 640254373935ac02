"""Admin for outbound calls: agents and trunks (editable), calls and callback deliveries (read-only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html_join

from calls import admin_talk, dnc, representations, services, validation, webhooks
from calls.dialers import dialer_names
from calls.models import Agent, Call, CallEvent, DoNotCallEntry, SipTrunk, WebhookAttempt, WebhookDelivery
from calls.representations import is_stalled
from integrations.forms import SecretMapFormMixin
from tenants import widgets
from tenants.admin import ReadOnlyAdminMixin, TenantScopedAdmin, TenantScopedInline, admin_page
from tenants.models import Role


class ReadOnlyInline(ReadOnlyAdminMixin, TenantScopedInline, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


class AgentForm(forms.ModelForm):
    # Bounds as in the API; left empty they take the model's defaults.
    max_turns = forms.IntegerField(min_value=1, max_value=validation.MAX_TURNS, initial=30, required=False)
    max_duration_seconds = forms.IntegerField(
        min_value=1, max_value=validation.MAX_DURATION_SECONDS, initial=600, required=False
    )

    class Meta:
        model = Agent
        exclude: list[str] = []
        widgets = {
            "analysis": widgets.StructuredJSONWidget(
                kind="object",
                sections=[
                    widgets.section(
                        "dispositions",
                        "Dispositions (how a call can end)",
                        widgets.StructuredJSONWidget(
                            kind="strings", label="Disposition", add_label="Add a disposition"
                        ),
                    ),
                    widgets.section(
                        "extract",
                        "Values to extract from the conversation",
                        widgets.StructuredJSONWidget(
                            kind="list",
                            columns=[
                                widgets.text("name", "Name", "preferred_date"),
                                widgets.select("type", "Type", validation.EXTRACT_TYPES),
                                widgets.text("description", "Description (for the AI)"),
                                widgets.json_value("values", "Values (enum)", '["morning", "evening"]'),
                            ],
                            add_label="Add a value",
                        ),
                    ),
                ],
            ),
            "verification": widgets.StructuredJSONWidget(
                kind="strings", label="Metadata key", add_label="Add a key the caller must state"
            ),
        }

    def clean_max_turns(self):
        return self.cleaned_data.get("max_turns") or 30

    def clean_max_duration_seconds(self):
        return self.cleaned_data.get("max_duration_seconds") or 600

    def clean_analysis(self):
        return validation.clean_analysis(self.cleaned_data.get("analysis"))

    def clean_prompt(self):
        return validation.clean_template(self.cleaned_data.get("prompt"), "prompt")

    def clean_first_message(self):
        return validation.clean_template(self.cleaned_data.get("first_message"), "first_message")

    def clean_end_call_message(self):
        return validation.clean_template(self.cleaned_data.get("end_call_message"), "end_call_message")

    def clean_input_schema(self):
        return validation.clean_input_schema(self.cleaned_data.get("input_schema"))

    def clean(self):
        cleaned = super().clean()
        if "verification" in cleaned:
            fields = (cleaned.get("input_schema") or {}).get("fields") or []
            try:
                cleaned["verification"] = validation.clean_verification(cleaned["verification"], input_fields=fields)
            except ValidationError as exc:
                self.add_error("verification", exc)
        return cleaned


@admin.register(Agent)
class AgentAdmin(TenantScopedAdmin):
    form = AgentForm
    list_display = ["name", "agent_code", "status", "language", "voice", "updated_at"]
    list_filter = ["status"]
    search_fields = ["name", "agent_code"]
    filter_horizontal = ["tools"]
    change_form_template = "calls/agent_change_form.html"

    def get_urls(self):
        view = self.admin_site.admin_view(
            lambda request, object_id: admin_talk.talk_view(self.admin_site, request, object_id)
        )
        return [path("<path:object_id>/talk/", view, name="calls_agent_talk"), *super().get_urls()]


class SipTrunkForm(SecretMapFormMixin, forms.ModelForm):
    secret_maps = {"dialer_secrets": True}
    dialer = forms.ChoiceField(choices=[(name, name) for name in dialer_names()])
    max_cps = forms.IntegerField(
        min_value=validation.TRUNK_LIMITS["max_cps"][0],
        max_value=validation.TRUNK_LIMITS["max_cps"][1],
        initial=1,
        help_text="Most call starts in any one-second window",
    )
    max_channels = forms.IntegerField(
        min_value=validation.TRUNK_LIMITS["max_channels"][0],
        max_value=validation.TRUNK_LIMITS["max_channels"][1],
        initial=10,
        help_text="Most live calls at once",
    )

    class Meta:
        model = SipTrunk
        exclude: list[str] = []

    def clean_trunk_phone(self):
        return validation.clean_trunk_phone(self.cleaned_data.get("trunk_phone"))

    def clean(self):
        cleaned = super().clean()
        dialer = cleaned.get("dialer")
        if not dialer:
            return cleaned
        # As the API does: another back end's secrets mean nothing to this one.
        same = self.instance.pk is not None and self.instance.dialer == dialer
        stored = {"dialer_secrets": (self.instance.dialer_secrets or {}) if same else {}}
        if not self.merge_secret_maps(cleaned, stored):
            return cleaned
        try:
            cleaned["dialer_config"], cleaned["dialer_secrets"] = validation.clean_dialer_settings(
                dialer, cleaned.get("dialer_config"), cleaned["dialer_secrets"]
            )
        except ValidationError as exc:
            self.add_error(None, exc)
        return cleaned


@admin.register(SipTrunk)
class SipTrunkAdmin(TenantScopedAdmin):
    form = SipTrunkForm
    list_display = ["name", "trunk_phone", "status", "dialer", "max_cps", "max_channels", "channels_in_use"]
    list_filter = ["status", "dialer"]
    search_fields = ["name", "trunk_phone"]
    readonly_fields = ["channels_in_use"]

    @admin.display(description="Live channels")
    def channels_in_use(self, obj: SipTrunk) -> str:
        if obj.pk is None:
            return "—"
        return f"{services.live_channels(obj)} / {obj.max_channels}"


class CallEventInline(ReadOnlyInline):
    model = CallEvent
    fields = readonly_fields = ("recorded_at", "occurred_at", "status", "source", "ignored", "ignored_reason", "detail")
    verbose_name_plural = "Event history"


# What a delivery is at a glance: its call's page lists them, the deliveries page adds when they began.
DELIVERY_COLUMNS = ("event", "url", "status", "attempts", "last_status_code", "next_attempt_at", "delivered_at")


class CallDeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    fields = readonly_fields = DELIVERY_COLUMNS
    show_change_link = True


class StalledFilter(admin.SimpleListFilter):
    title = "stalled"
    parameter_name = "stalled"

    def lookups(self, request, model_admin):
        return [("yes", "Stalled"), ("no", "Not stalled")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(stalled_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(stalled_at__isnull=True)
        return queryset


@admin.register(Call)
class CallAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["created_at", "phone_number", "status", "agent", "sip_trunk", "duration", "stalled"]
    list_filter = ["status", StalledFilter, "sip_trunk", "agent"]
    search_fields = ["phone_number", "id"]
    date_hierarchy = "created_at"
    inlines = [CallEventInline, CallDeliveryInline]
    list_select_related = ["agent", "sip_trunk"]
    fieldsets = [
        (None, {"fields": ["id", "tenant", "agent", "sip_trunk", "phone_number", "status", "rejection_reason"]}),
        (
            "Request and outcome",
            {
                "fields": [
                    "metadata",
                    "conversation",
                    "callback_url",
                    "callback_fields",
                    "call_outcome",
                    "transcript",
                    "transcript_url",
                    "recording_url",
                ]
            },
        ),
        (
            "Timing",
            {
                "fields": [
                    "created_at",
                    "started_at",
                    "start_timestamp",
                    "end_timestamp",
                    "duration",
                    "last_updated",
                    "stalled_at",
                ]
            },
        ),
        (
            "Dialer and idempotency",
            {
                "classes": ["collapse"],
                "fields": [
                    "placed_at",
                    "provider_call_id",
                    "dialer_state",
                    "dialer_due_at",
                    "dialer_lease_until",
                    "dialer_claims",
                    "idempotency_key",
                    "request_fingerprint",
                ],
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [*(f.name for f in Call._meta.fields), "transcript"]

    @admin.display(description="Transcript")
    def transcript(self, obj: Call):
        """What the agent and the callee said, and the tools it ran (calls that ran the agent runtime)."""
        if obj.conversation is None:
            return "—"
        lines = representations.transcript(obj, obj.conversation.messages.order_by("created_at", "id"))["messages"]
        if not lines:
            return "—"
        return format_html_join(
            "", '<div class="transcript-line"><strong>{}</strong>: {}</div>', ((m["role"], m["text"]) for m in lines)
        )

    @admin.display(boolean=True, description="Stalled")
    def stalled(self, obj: Call) -> bool:
        return obj.stalled_at is not None or is_stalled(obj)


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = readonly_fields = (
        "number",
        "outcome",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
        "response_excerpt",
    )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["created_at", *DELIVERY_COLUMNS]
    list_filter = ["status", "event"]
    search_fields = ["url", "webhook_id", "call__id"]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]
    redeliver_role = Role.MEMBER

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in WebhookDelivery._meta.fields]

    def has_redeliver_permission(self, request) -> bool:
        return self._has_role(request, self.redeliver_role)

    @admin.action(description="Redeliver selected notifications", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        count = 0
        for delivery in queryset.select_related("tenant"):
            if self._has_role(request, self.redeliver_role, delivery):
                webhooks.redeliver(delivery)
                count += 1
        self.message_user(request, f"Queued {count} notification(s) for redelivery.", messages.SUCCESS)


class DoNotCallImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with a phone_number column (optional reason column)")
    region = forms.CharField(required=False, max_length=2, help_text="Country code for national numbers, e.g. IN")


@admin.register(DoNotCallEntry)
class DoNotCallAdmin(TenantScopedAdmin):
    list_display = ["phone_number", "reason", "created_at"]
    search_fields = ["phone_number", "reason"]
    change_list_template = "calls/donotcall_changelist.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="calls_donotcallentry_import"), *super().get_urls()]

    def import_view(self, request):
        tenants = list(self.editable_tenants(request))
        form = DoNotCallImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid() and len(tenants) == 1:
            upload = form.cleaned_data["file"]
            try:
                if upload.size > dnc.MAX_IMPORT_BYTES:
                    raise dnc.DoNotCallError("the file is larger than 20 MB")
                report = dnc.import_csv(tenants[0], upload.read(), region=form.cleaned_data["region"].upper() or None)
            except dnc.DoNotCallError as exc:
                self.message_user(request, f"Import refused: {exc.message}", messages.ERROR)
            else:
                rejected = "; ".join(f"row {r['row']}: {r['error']}" for r in report.rejected[:20])
                self.message_user(
                    request,
                    f"{report.added} added, {report.already_listed} already listed, {len(report.rejected)} rejected"
                    + (f": {rejected}" if rejected else "."),
                    messages.WARNING if report.rejected else messages.SUCCESS,
                )
            return HttpResponseRedirect(reverse("admin:calls_donotcallentry_changelist"))
        if request.method == "POST" and len(tenants) != 1:
            self.message_user(request, "Import from an account that administers exactly one tenant.", messages.ERROR)
        return admin_page(self, request, "calls/donotcall_import.html", "Import numbers", form=form)
