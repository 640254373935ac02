"""Admin: credentials, connections with their endpoints inline, the test consoles, and the call log.

Secret maps are write-only (see `integrations.forms`); the test pages call the same service functions
as the REST actions (`integrations.consoles`).
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from integrations import consoles
from integrations.forms import ConnectionForm, CredentialForm, EndpointForm, EndpointTestForm
from integrations.models import ApiCallLog, Connection, Credential, Endpoint
from tenants import scoping
from tenants.admin import TenantScopedAdmin, TenantScopedInline, admin_context
from tenants.models import Role, role_at_least


class TestConsoleMixin:
    """A `<id>/test/` page (member role) and a "Test" link in the list."""

    test_template = ""

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_test"
        view = self.admin_site.admin_view(self.test_view)
        return [path("<path:object_id>/test/", view, name=name), *super().get_urls()]

    def scoped_object_for_test(self, request, object_id):
        obj = get_object_or_404(scoping.for_user(self.model._default_manager.all(), request.user), pk=_uuid(object_id))
        if not role_at_least(scoping.role_for_user(request.user, obj.tenant), Role.MEMBER):
            raise Http404("Not found.")
        return obj

    @admin.display(description="Test")
    def test_link(self, obj):
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_test", args=[obj.pk])
        return format_html('<a class="button" href="{}">Test</a>', url)

    def render_test(self, request, obj, **context):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "title": f"Test {obj}",
            **context,
        }
        return TemplateResponse(request, self.test_template, context)


def _uuid(value: str) -> str:
    import uuid

    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise Http404("Not found.") from None


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def single_tenant(admin_instance, request):
    """The tenant a new object gets when the user can edit only one (the form hides the field)."""
    tenants = admin_instance.editable_tenants(request)
    return tenants.first() if tenants.count() == 1 else None


def with_tenant_fallback(form_class, tenant):
    return type(form_class.__name__, (form_class,), {"tenant_fallback": tenant})


@admin.register(Credential)
class CredentialAdmin(TenantScopedAdmin):
    form = CredentialForm
    list_display = ["name", "type", "updated_at"]
    list_filter = ["type"]
    search_fields = ["name"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        return with_tenant_fallback(super().get_form(request, obj, change, **kwargs), single_tenant(self, request))


class EndpointInline(TenantScopedInline, admin.StackedInline):
    model = Endpoint
    form = EndpointForm
    extra = 0
    show_change_link = True
    fk_name = "connection"

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = with_tenant_fallback(formset.form, obj.tenant if obj else single_tenant(self, request))
        return formset


@admin.register(Connection)
class ConnectionAdmin(TestConsoleMixin, TenantScopedAdmin):
    form = ConnectionForm
    inlines = [EndpointInline]
    list_display = ["name", "base_url", "credential", "updated_at", "test_link"]
    search_fields = ["name", "base_url"]
    test_template = "integrations/connection_test.html"
    change_form_template = "integrations/change_form_with_test.html"

    def save_formset(self, request, form, formset, change) -> None:
        # TenantScopedAdmin.save_formset tests `hasattr(instance, "tenant")`, which is False for an unset
        # FK (the descriptor raises), so new inline endpoints would get no tenant: set it here first.
        for inline_form in formset.forms:
            if inline_form.instance.tenant_id is None:
                inline_form.instance.tenant_id = form.instance.tenant_id
        super().save_formset(request, form, formset, change)

    def test_view(self, request, object_id):
        connection = self.scoped_object_for_test(request, object_id)
        outcome = None
        if request.method == "POST":
            outcome = consoles.run_connection_test(connection, ctx=admin_context(request, connection.tenant))
        return self.render_test(request, connection, outcome=outcome, outcome_json=_pretty(outcome))


@admin.register(Endpoint)
class EndpointAdmin(TestConsoleMixin, TenantScopedAdmin):
    form = EndpointForm
    list_display = ["name", "tool_name", "method", "connection", "burden", "test_link"]
    # RelatedOnlyFieldListFilter offers only what the (scoped) queryset references: no other tenant's names.
    list_filter = ["method", "burden", ("connection", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "tool_name", "path"]
    test_template = "integrations/endpoint_test.html"
    change_form_template = "integrations/change_form_with_test.html"

    def save_model(self, request, obj, form, change) -> None:
        obj.tenant_id = obj.connection.tenant_id
        super().save_model(request, obj, form, change)

    def test_view(self, request, object_id):
        endpoint = self.scoped_object_for_test(request, object_id)
        form = EndpointTestForm(request.POST or None)
        outcome = None
        if request.method == "POST" and form.is_valid():
            outcome = consoles.run_endpoint_test(
                endpoint,
                params=form.cleaned_data["params"],
                variables=form.cleaned_data["variables"],
                ctx=admin_context(request, endpoint.tenant),
            )
        pretty = {key: _pretty(value) for key, value in (outcome or {}).items()}
        return self.render_test(request, endpoint, form=form, outcome=outcome, pretty=pretty)


@admin.register(ApiCallLog)
class ApiCallLogAdmin(TenantScopedAdmin):
    list_display = [
        "created_at",
        "endpoint_name",
        "trigger",
        "method",
        "status",
        "status_code",
        "duration_ms",
        "attempts",
    ]
    list_filter = [
        "status",
        "trigger",
        ("endpoint", admin.RelatedOnlyFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["endpoint_name", "url", "error", "actor"]
    date_hierarchy = "created_at"
    list_select_related = ["endpoint"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
