"""Admin for rules (actions inline, a dry-run page), conversations (messages inline, read-only), widget keys."""

from __future__ import annotations

import json
from typing import cast

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.urls import path, reverse

from rules import services
from rules.models import ActionType, Conversation, Message, OnError, Rule, RuleAction, WidgetKey
from tenants import scoping, widgets
from tenants.admin import TenantScopedAdmin, TenantScopedInline, admin_page
from tenants.models import Role, Tenant
from tenants.parsers import RequestJSONRefused, check_request_json


class RuleActionForm(forms.ModelForm):
    class Meta:
        model = RuleAction
        fields = ["params"]  # the inline's `fields` decide the rest
        widgets = {"params": widgets.template_map("Parameter", placeholder="{{ order_id }}")}


class RuleActionInline(TenantScopedInline, admin.StackedInline):
    model = RuleAction
    form = RuleActionForm
    fk_name = "rule"
    extra = 0
    fields = [
        ("position", "type", "parent"),
        ("endpoint", "on_error"),
        "params",
        ("variable", "value"),
        "template",
        "instructions",
    ]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "parent" and field is not None:
            # A branch action hangs off a CALL_API action of the same rule whose on_error is "branch".
            rule_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
            field.queryset = (
                field.queryset.filter(rule_id=rule_id, type=ActionType.CALL_API, on_error=OnError.BRANCH)
                if rule_id
                else field.queryset.none()
            )
        return field


@admin.register(Rule)
class RuleAdmin(TenantScopedAdmin):
    list_display = ["name", "priority", "trigger_type", "is_active", "continue_matching", "updated_at"]
    list_filter = ["trigger_type", "is_active"]
    search_fields = ["name", "pattern", "condition"]
    ordering = ["priority", "created_at"]
    inlines = [RuleActionInline]
    change_list_template = "admin/rules/rule/change_list.html"
    fieldsets = [
        (None, {"fields": ["tenant", "name", "priority", "is_active", "continue_matching"]}),
        (
            "Trigger",
            {
                "fields": ["trigger_type", "pattern", "flags", "condition"],
                "description": "regex: an RE2 pattern (or /pattern/i) with flags i, m, s; "
                "named groups become variables. ai: a condition the AI judges. always: the fallback.",
            },
        ),
        ("Fallback", {"fields": ["fallback_text"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if "tenant" in self.get_exclude(request, obj):
            first = dict(fieldsets[0][1])
            first["fields"] = [f for f in first["fields"] if f != "tenant"]
            fieldsets = [(None, first), *fieldsets[1:]]
        return fieldsets

    def get_urls(self):
        view = self.admin_site.admin_view(self.dry_run_view)
        return [path("dry-run/", view, name="rules_rule_dry_run"), *super().get_urls()]

    def dry_run_view(self, request):
        """The REST dry run as an HTML page: the same `services.dry_run`, the same report."""
        tenants = Tenant.objects.filter(pk__in=scoping.tenant_ids_for_user(request.user, Role.MEMBER))
        if request.user.is_superuser:
            tenants = Tenant.objects.all()
        if not tenants.exists():
            raise PermissionDenied
        form = DryRunForm(request.POST or None, tenants=tenants)
        report = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            report = services.dry_run(data["tenant"], data["message"], variables=data["variables"])
        report_json = json.dumps(report, indent=2, default=str) if report else ""
        template = "admin/rules/rule/dry_run.html"
        return admin_page(
            self, request, template, "Dry-run a message", form=form, report=report, report_json=report_json
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "dry_run_url": reverse("admin:rules_rule_dry_run")}
        return super().changelist_view(request, extra_context)


class DryRunForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    variables = forms.JSONField(required=False, initial=dict, help_text="Session variables as a JSON object")

    def __init__(self, *args, tenants, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["tenant"]).queryset = tenants
        if tenants.count() == 1:
            self.fields["tenant"].initial = tenants.first()
            self.fields["tenant"].widget = forms.HiddenInput()

    def clean_variables(self):
        value = self.cleaned_data.get("variables") or {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Variables must be a JSON object.")
        try:
            return check_request_json(value)
        except RequestJSONRefused as exc:
            raise forms.ValidationError(f"Variables: {exc}.") from None


class MessageInline(TenantScopedInline, admin.TabularInline):
    model = Message
    extra = 0
    fields = readonly_fields = ("created_at", "role", "text", "rule", "data")
    ordering = ["created_at"]
    can_delete = False
    max_num = 0

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the record of what was said is never edited


@admin.register(Conversation)
class ConversationAdmin(TenantScopedAdmin):
    list_display = ["__str__", "channel", "visitor_id", "identity_verified", "created_at", "updated_at"]
    list_filter = ["channel", "identity_verified"]
    search_fields = ["visitor_id", "id"]
    date_hierarchy = "created_at"
    fields = ["channel", "visitor_id", "variables", "identity_verified", "widget_key", "created_at", "updated_at"]
    readonly_fields = ["channel", "widget_key", "created_at", "updated_at"]
    inlines = [MessageInline]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WidgetKey)
class WidgetKeyAdmin(TenantScopedAdmin):
    list_display = ["name", "key", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "key"]
    fields = ["tenant", "name", "key", "allowed_origins", "is_active", "created_at"]
    readonly_fields = ["key", "created_at"]

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if "tenant" in self.get_exclude(request, obj):
            fields.remove("tenant")
        return fields
