"""Admin: credentials, connections with their endpoints inline, the test consoles, and the call log.

Secret maps are write-only (see `integrations.forms`); the test pages call the same service functions
as the REST actions (`integrations.consoles`).
"""

from __future__ import annotations

import json
import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from integrations import auth, consoles, signing
from integrations.auth import credential_state, oauth
from integrations.forms import ConnectionForm, CredentialForm, EndpointForm, EndpointTestForm
from integrations.models import ApiCallLog, Connection, Credential, Endpoint
from tenants import scoping
from tenants.admin import ReadOnlyAdminMixin, TenantScopedAdmin, TenantScopedInline, admin_context, admin_page
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
        return admin_page(self, request, self.test_template, f"Test {obj}", original=obj, **context)


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise Http404("Not found.") from None


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@admin.register(Credential)
class CredentialAdmin(TenantScopedAdmin):
    """Credentials; an `oauth2_authorization_code` one also has "Connect" (the provider's consent page,
    back through the one callback URL) and shows whether it is connected or needs reconnecting."""

    form = CredentialForm
    list_display = ["name", "type", "authorization_status", "updated_at"]
    list_filter = ["type"]
    search_fields = ["name"]
    change_form_template = "integrations/credential_change_form.html"

    def get_urls(self):
        connect = self.admin_site.admin_view(self.oauth2_connect_view)
        callback = self.admin_site.admin_view(self.oauth2_callback_view)
        return [
            path("oauth2/callback/", callback, name="integrations_credential_oauth2_callback"),
            path("<path:object_id>/oauth2/connect/", connect, name="integrations_credential_oauth2_connect"),
            *super().get_urls(),
        ]

    def save_model(self, request, obj, form, change) -> None:
        if change:
            credential_state.save_settings(obj)  # never writes back a grant refreshed meanwhile
        else:
            super().save_model(request, obj, form, change)

    @admin.display(description="Authorization")
    def authorization_status(self, obj):
        if not getattr(_type_of(obj), "connectable", False):
            return "—"
        status, _ = oauth.connection_status(obj)
        return format_html('<span class="oauth2-status oauth2-{}">{}</span>', status, _STATUS_LABELS[status])

    def change_view(self, request, object_id, form_url="", extra_context=None):
        credential = self.get_object(request, object_id) if object_id else None
        extra = dict(extra_context or {})
        if credential is not None and getattr(_type_of(credential), "connectable", False):
            status, detail = oauth.connection_status(credential)
            extra["oauth2"] = {
                "status": status,
                "label": _STATUS_LABELS[status],
                "detail": detail,
                "redirect_uri": oauth2_redirect_uri(request),
                "can_connect": self.has_change_permission(request, credential),
            }
            if status == oauth.RECONNECT_NEEDED and request.method == "GET":
                messages.warning(request, f"{auth.AuthorizationNeeded.MESSAGE} ({detail}).")
        return super().change_view(request, object_id, form_url, extra)

    def _connectable(self, request, object_id) -> Credential:
        """The admin's own credential of a connectable type, else 404 (another tenant's included)."""
        queryset = scoping.for_user(Credential.objects.all(), request.user, min_role=Role.ADMIN)
        credential = get_object_or_404(queryset, pk=_uuid(object_id))
        if not getattr(_type_of(credential), "connectable", False):
            raise Http404("Not found.")
        return credential

    def oauth2_connect_view(self, request, object_id):
        credential = self._connectable(request, object_id)
        change_url = reverse("admin:integrations_credential_change", args=[credential.pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        authenticator = auth.for_credential(credential)
        return HttpResponseRedirect(authenticator.authorization_url(request.session, oauth2_redirect_uri(request)))

    def oauth2_callback_view(self, request):
        try:
            pending = oauth.take_pending(request.session, request.GET.get("state", ""))
        except oauth.ConnectFailed as exc:
            return self._callback_failed(request, str(exc))
        credential = self._connectable(request, pending.credential_id)
        change_url = reverse("admin:integrations_credential_change", args=[credential.pk])
        ctx = admin_context(request, credential.tenant)
        if request.GET.get("error"):
            reason = request.GET["error"][:100] + (": " + request.GET.get("error_description", "")[:300]).rstrip(": ")
            oauth.record(ctx, credential, f"connect failed: {reason}")
            messages.error(request, f"The provider did not authorize the connection: {reason}")
            return HttpResponseRedirect(change_url)
        try:
            auth.for_credential(credential).complete(pending, request.GET.get("code", ""), ctx=ctx)
        except (oauth.ConnectFailed, auth.CredentialUnavailable) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Connected: the credential now holds a token from the provider.")
        return HttpResponseRedirect(change_url)

    def _callback_failed(self, request, message: str):
        return admin_page(
            self, request, "integrations/oauth2_callback_failed.html", "Connect", status=400, error=message
        )


_STATUS_LABELS = {
    oauth.CONNECTED: "Connected",
    oauth.RECONNECT_NEEDED: "Reconnect needed",
    "not_connected": "Not connected",
}


def _type_of(credential: Credential):
    try:
        return auth.get_type(credential.type)
    except KeyError:
        return None


def oauth2_redirect_uri(request) -> str:
    """The one redirect URI every authorization-code credential uses (register it at the provider)."""
    return request.build_absolute_uri(reverse("admin:integrations_credential_oauth2_callback"))


class EndpointInline(TenantScopedInline, admin.StackedInline):
    model = Endpoint
    form = EndpointForm
    extra = 0
    show_change_link = True
    fk_name = "connection"


@admin.register(Connection)
class ConnectionAdmin(TestConsoleMixin, TenantScopedAdmin):
    form = ConnectionForm
    inlines = [EndpointInline]
    list_display = ["name", "base_url", "credential", "updated_at", "test_link"]
    search_fields = ["name", "base_url"]
    test_template = "integrations/connection_test.html"
    change_form_template = "integrations/connection_change_form.html"

    def test_view(self, request, object_id):
        connection = self.scoped_object_for_test(request, object_id)
        outcome = None
        if request.method == "POST":
            outcome = consoles.run_connection_test(connection, ctx=admin_context(request, connection.tenant))
        return self.render_test(request, connection, outcome=outcome, outcome_json=_pretty(outcome))

    # Request signing: the secret is rendered into the one response that made it, never stored elsewhere.
    def get_urls(self):
        view = self.admin_site.admin_view(self.rotate_signing_secret_view)
        name = "integrations_connection_signing_secret"
        return [path("<path:object_id>/signing-secret/", view, name=name), *super().get_urls()]

    def save_model(self, request, obj, form, change) -> None:
        was_signing = bool(form.initial.get("sign_requests")) if change else False
        super().save_model(request, obj, form, change)
        request.new_signing_secret = signing.settle_secret(obj, was_signing=was_signing)

    def response_add(self, request, obj, post_url_continue=None):
        return self._show_new_secret(request, obj) or super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        return self._show_new_secret(request, obj) or super().response_change(request, obj)

    def rotate_signing_secret_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        connection = get_object_or_404(self.get_queryset(request), pk=_uuid(object_id))
        if not self.has_change_permission(request, connection):
            raise PermissionDenied
        request.new_signing_secret = signing.rotate_secret(connection, ctx=admin_context(request, connection.tenant))
        return self._show_new_secret(request, connection)

    def _show_new_secret(self, request, connection):
        secret = getattr(request, "new_signing_secret", None)
        if not secret:
            return None
        return admin_page(
            self,
            request,
            "integrations/signing_secret.html",
            "Request signing secret",
            original=connection,
            signing_secret=secret,
        )


@admin.register(Endpoint)
class EndpointAdmin(TestConsoleMixin, TenantScopedAdmin):
    form = EndpointForm
    list_display = ["name", "tool_name", "method", "connection", "burden", "test_link"]
    # RelatedOnlyFieldListFilter offers only what the (scoped) queryset references: no other tenant's names.
    list_filter = ["method", "burden", ("connection", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "tool_name", "path"]
    test_template = "integrations/endpoint_test.html"
    change_form_template = "integrations/change_form_with_test.html"

    def test_view(self, request, object_id):
        endpoint = self.scoped_object_for_test(request, object_id)
        form = EndpointTestForm(request.POST or None, endpoint=endpoint)
        outcome = None
        if request.method == "POST" and form.is_valid():
            outcome = consoles.run_endpoint_test(
                endpoint,
                **{name: form.cleaned_data[name] for name in ("params", "variables", "row", "extracted")},
                ctx=admin_context(request, endpoint.tenant),
            )
        pretty = {key: _pretty(value) for key, value in (outcome or {}).items()}
        return self.render_test(request, endpoint, form=form, outcome=outcome, pretty=pretty)


@admin.register(ApiCallLog)
class ApiCallLogAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
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
