"""Tenant-scoped admin: staff users see and edit only their tenants' objects; a superuser sees all.

Every app's ModelAdmin extends `TenantScopedAdmin` (or `TenantScopedInline`), so scoping, role checks
and the tenant field live in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import escape

from tenants import audit, scoping, services
from tenants.auth import client_ip
from tenants.invariants import cross_tenant_errors, is_tenant_owned, tenant_m2m_relations
from tenants.models import ApiKey, AuditAction, AuditEvent, Membership, Role, Tenant, role_at_least
from tenants.parsers import RequestJSONRefused, check_request_json
from tenants.scoping import TenantContext
from tenants.secrets import mask
from tenants.validation import taken_in_tenant

if TYPE_CHECKING:
    _ModelFormMixinBase = forms.ModelForm
else:  # TenantBoundForm is only ever mixed in front of a ModelForm (by bind_form)
    _ModelFormMixinBase = object


def admin_context(request, tenant: Tenant | None) -> TenantContext:
    """Who is acting in the admin, for audit events and service calls."""
    role = scoping.role_for_user(request.user, tenant) if tenant else None
    return TenantContext(tenant=tenant, role=role, user=request.user, ip_address=client_ip(request))


def admin_page(model_admin, request, template: str, title: str, *, status: int = 200, **context) -> TemplateResponse:
    """One of `model_admin`'s own pages (a test console, a dry run, a secret shown once): `template` in
    the admin's frame, with its site context, the model's `opts` and `title`."""
    page = {**model_admin.admin_site.each_context(request), "opts": model_admin.opts, "title": title, **context}
    return TemplateResponse(request, template, page, status=status)


class TenantScopedMixin:
    """Scoping and role checks shared by model admins and inlines."""

    view_role = Role.VIEWER
    edit_role = Role.ADMIN

    def get_queryset(self, request):
        # Only tenants where the user may view this kind of object (an owner-only list stays owner-only
        # even for a user who is a mere viewer of another tenant).
        return scoping.for_user(super().get_queryset(request), request.user, min_role=self.view_role)

    def _has_role(self, request, role: str, obj=None) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        roles = _roles_of(request)
        if obj is not None:
            return roles.get(obj.tenant_id) in _roles_at_least(role)
        return any(role_at_least(held, role) for held in roles.values())

    def has_module_permission(self, request) -> bool:
        return self._has_role(request, self.view_role)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._has_role(request, self.view_role, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._has_role(request, self.edit_role)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._has_role(request, self.edit_role, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._has_role(request, self.edit_role, obj)

    # FK/M2M choices: objects of the tenants where the user may write this kind of object (a viewer
    # of B never picks B's credential for A); `TenantBoundForm` narrows them to the object's tenant.
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        if related is Tenant:
            kwargs["queryset"] = self.editable_tenants(request)
        elif is_tenant_owned(related):
            kwargs["queryset"] = self.writable(related, request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        if is_tenant_owned(related):
            kwargs["queryset"] = self.writable(related, request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def writable(self, model, request):
        return scoping.for_user(model._default_manager.all(), request.user, min_role=self.edit_role)

    def editable_tenants(self, request):
        if request.user.is_superuser:
            return Tenant.objects.all()
        return Tenant.objects.filter(pk__in=scoping.tenant_ids_for_user(request.user, self.edit_role))

    def form_tenant(self, request, obj=None) -> Tenant | None:
        """The tenant an edited object belongs to: the object's own, else the one the user can edit."""
        if obj is not None and getattr(obj, "tenant_id", None) is not None:
            return obj.tenant
        tenants = list(self.editable_tenants(request)[:2])
        return tenants[0] if len(tenants) == 1 else None


class TenantBoundForm(_ModelFormMixinBase):
    """Mixed into every admin form of a tenant-owned model (by `bind_form`): the object's tenant is
    known to validation before `clean()` runs, choices are that tenant's objects only, and the
    same-tenant invariant (`tenants.invariants`) is checked for M2M values too."""

    bound_tenant: Tenant | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tenant = self.bound_tenant
        if tenant is None:
            return
        if getattr(self.instance, "tenant_id", None) is None:
            self.instance.tenant = tenant
        for name, field in self.fields.items():
            queryset = getattr(field, "queryset", None)
            if name != "tenant" and queryset is not None and is_tenant_owned(queryset.model):
                field.queryset = scoping.for_tenant(queryset, tenant)

    def clean(self):
        data = super().clean()
        # The API's limits on JSON apply to the admin's JSON boxes too (`1e999` is infinity, which
        # no JSON column stores: a 500 at save).
        for name, field in self.fields.items():
            if isinstance(field, forms.JSONField) and name in data:
                try:
                    check_request_json(data[name])
                except RequestJSONRefused as exc:
                    self.add_error(name, str(exc)[:1].upper() + str(exc)[1:] + ".")
        self._check_unique_in_tenant(data)
        return data

    def _check_unique_in_tenant(self, data: dict) -> None:
        """A form's `unique_in_tenant = {field: message}`: "unique within the tenant" in the same words
        as the API (`tenants.validation.taken_in_tenant`), on the field; `validate_unique` then skips
        the constraint. Read with getattr: this class sits in front of the form that declares it."""
        unique: dict[str, str] = getattr(self, "unique_in_tenant", {})
        tenant = self._tenant_of(data) if unique else None
        for field, message in unique.items():
            if field in self.errors:
                continue
            if taken_in_tenant(self._meta.model, tenant, field, data.get(field), instance=self.instance):
                self.add_error(field, message)

    def _tenant_of(self, data: dict) -> Tenant | None:
        """The tenant the object will belong to: the one chosen, its parent's (an endpoint's connection,
        `tenant_parent`), else its own (the bound tenant)."""
        if data.get("tenant") is not None:
            return data["tenant"]
        parent = data.get(getattr(self._meta.model, "tenant_parent", None) or "")
        if parent is not None and getattr(parent, "tenant_id", None) is not None:
            return parent.tenant
        return self.instance.tenant if getattr(self.instance, "tenant_id", None) is not None else None

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # Django's private form API, not in the stubs
        m2m = {
            field.name: self.cleaned_data[field.name]
            for field in tenant_m2m_relations(self._meta.model)
            if self.cleaned_data.get(field.name)
        }
        errors = cross_tenant_errors(self.instance, fields=(), m2m=m2m) if m2m else {}
        if errors:
            self._update_errors(ValidationError(errors))

    def validate_unique(self) -> None:
        super().validate_unique()
        if "tenant" in self.fields or getattr(self.instance, "tenant_id", None) is None:
            return
        # The tenant field is hidden, so Django skips every constraint that names it ("unique within
        # the tenant") and the INSERT would fail with an IntegrityError (a 500). Check those here,
        # unless the form already reported the field.
        exclude = self._get_validation_exclusions() - {"tenant"}  # type: ignore[attr-defined]  # Django's private form API, not in the stubs
        model = type(self.instance)
        for constraint in model._meta.constraints:
            fields = set(getattr(constraint, "fields", ()))
            if "tenant" not in fields or fields & exclude or fields & set(self.errors):
                continue
            try:
                constraint.validate(model, self.instance, exclude=exclude)
            except ValidationError as exc:
                self._update_errors(exc)

    def _update_errors(self, errors: ValidationError) -> None:
        # A model-level error about a field this form does not show (the hidden tenant, an inline's
        # parent) becomes a form-wide error instead of Django's ValueError (a 500).
        if hasattr(errors, "error_dict"):
            shown: dict = {}
            for field, messages in errors.error_dict.items():
                key = field if field in self.fields or field == NON_FIELD_ERRORS else NON_FIELD_ERRORS
                shown.setdefault(key, []).extend(messages if key == field else [f"{field}: {m}" for m in messages])
            errors = ValidationError(shown)
        super()._update_errors(errors)  # type: ignore[misc]  # Django's private form API, not in the stubs


def bind_form(form_class, tenant: Tenant | None):
    """`form_class` bound to `tenant` (None: a user choosing among several tenants; the tenant field
    then decides and the invariant checks every reference against it)."""
    return type(form_class.__name__, (TenantBoundForm, form_class), {"bound_tenant": tenant})


def _roles_of(request) -> dict:
    """The user's role in each of their tenants, read once per request: the admin's index asks every
    model admin for four permissions, which would otherwise be one membership query each."""
    roles = getattr(request, "_switchboard_roles", None)
    if roles is None or roles[0] != request.user.pk:
        roles = (request.user.pk, scoping.roles_by_tenant(request.user))
        request._switchboard_roles = roles
    return roles[1]


def _roles_at_least(role: str) -> set[str]:
    return {r for r in Role.values if role_at_least(r, role)}


class TenantScopedAdmin(TenantScopedMixin, admin.ModelAdmin):
    """A ModelAdmin over a tenant-owned model.

    The tenant field is hidden when the user can edit only one tenant and is filled in on save; the
    objects an FK may point at are limited to the user's tenants.
    """

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if obj is not None or self.editable_tenants(request).count() <= 1:
            exclude.append("tenant")
        return exclude

    audited = True

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return bind_form(form, self.form_tenant(request, obj)) if is_tenant_owned(self.model) else form

    def get_list_filter(self, request):
        # A filter on a relation offers only what the scoped list references: a plain related filter
        # would list every tenant's agents and trunks (names and ids).
        filters = [_scoped_filter(self.model, entry) for entry in super().get_list_filter(request)]
        if request.user.is_superuser or len(scoping.tenant_ids_for_user(request.user)) > 1:
            # Related-only: the filter lists the tenants of the visible objects, never every tenant's name.
            filters.insert(0, ("tenant", admin.RelatedOnlyFieldListFilter))
        return filters

    def save_model(self, request, obj, form, change) -> None:
        if not change and getattr(obj, "tenant_id", None) is None:
            obj.tenant = self.editable_tenants(request).first()
        super().save_model(request, obj, form, change)
        self.audit(request, AuditAction.CHANGED if change else AuditAction.CREATED, obj)

    def delete_model(self, request, obj) -> None:
        self.audit(request, AuditAction.DELETED, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.audit(request, AuditAction.DELETED, obj)
        super().delete_queryset(request, queryset)

    def audit(self, request, action: str, obj) -> None:
        if self.audited:
            audit.record_event(admin_context(request, obj.tenant), action, obj)

    def save_formset(self, request, form, formset, change) -> None:
        instances = formset.save(commit=False)
        for instance in instances:
            # `hasattr(instance, "tenant")` would be False here: an unset FK raises on access.
            if hasattr(instance, "tenant_id") and instance.tenant_id is None:
                instance.tenant_id = form.instance.tenant_id
            instance.save()
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()


def _scoped_filter(model, entry):
    name = entry[0] if isinstance(entry, (list, tuple)) else entry
    if not isinstance(name, str):
        return entry  # a SimpleListFilter: it builds its own choices
    try:
        field = get_fields_from_path(model, name)[-1]
    except (FieldDoesNotExist, NotRelationField):  # Django's system checks report it
        return entry
    plain = isinstance(entry, str) or entry[1] is admin.RelatedFieldListFilter
    if field.is_relation and plain:
        return (name, admin.RelatedOnlyFieldListFilter)
    return entry


class ReadOnlyAdminMixin:
    """Records the system writes (audit events, call logs, calls): viewable, never edited by hand.

    A superuser may delete them (deleting a whole tenant needs that); tenant staff may not.
    """

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


class TenantScopedInline(TenantScopedMixin):
    """Mixin for inlines whose objects carry their parent's tenant (set by TenantScopedAdmin.save_formset)."""

    exclude: list[str] | tuple[str, ...] | None = ("tenant",)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = bind_form(formset.form, self.form_tenant(request, obj))
        return formset


class TenantForm(forms.ModelForm):
    """The tenant's settings; its AI provider's API key is write-only (blank keeps the stored one)."""

    llm_base_url = forms.URLField(
        label="AI provider base URL",
        required=False,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"class": "vURLField"}),
        help_text="An OpenAI-compatible API, e.g. https://api.openai.com/v1; blank: the platform's default",
    )
    llm_api_key = forms.CharField(
        label="AI provider API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug", "llm_base_url", "llm_model"]
        labels = {"llm_model": "AI model"}
        help_texts = {"llm_model": "Blank: the platform's default model"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = escape(mask(self.instance.llm_api_key) or "nothing")  # Django does not escape help texts
        self.fields["llm_api_key"].help_text = f"Write-only. Stored: {stored}. Leave blank to keep it."

    def clean_llm_api_key(self) -> str:
        return self.cleaned_data.get("llm_api_key") or self.instance.llm_api_key or ""


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantForm
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    fields = ["name", "slug", "llm_base_url", "llm_model", "llm_api_key"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return scoping.tenants_for_user(request.user)

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None) -> bool:
        if request.user.is_superuser:
            return True
        return obj is not None and scoping.role_for_user(request.user, obj) == Role.OWNER

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        action = AuditAction.CHANGED if change else AuditAction.CREATED
        audit.record_event(admin_context(request, obj), action, obj, tenant=obj)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role"]
    edit_role = Role.OWNER

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # An owner picks among the people of their own tenants: the list of every account on the
        # platform is not theirs to see. A superuser (or bootstrap_tenant) brings in new accounts.
        if db_field.name == "user" and not request.user.is_superuser:
            tenant_ids = scoping.tenant_ids_for_user(request.user)
            kwargs["queryset"] = get_user_model().objects.filter(memberships__tenant__in=tenant_ids).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ApiKeyForm(forms.ModelForm):
    def clean_expires_at(self):
        # The same rule as the API: a key that is born expired is a mistake, not a key.
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now() and "expires_at" in self.changed_data:
            raise forms.ValidationError("Must be in the future.")
        return value


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "role", "rate_limit", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["role"]
    search_fields = ["name", "prefix"]
    fields = [
        "tenant",
        "name",
        "role",
        "expires_at",
        "rate_limit",
        "prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    view_role = Role.OWNER
    edit_role = Role.OWNER
    actions = ["revoke_keys"]

    def get_exclude(self, request, obj=None):
        return [f for f in super().get_exclude(request, obj) if f != "tenant"]

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is not None or self.editable_tenants(request).count() <= 1:
            fields.remove("tenant")
        return fields

    def has_delete_permission(self, request, obj=None) -> bool:
        # Keys are revoked, not deleted, so the audit trail keeps pointing at them.
        return request.user.is_superuser

    def add_view(self, request, form_url="", extra_context=None):
        if request.method != "POST":
            return super().add_view(request, form_url, extra_context)
        if not self.has_add_permission(request):
            raise PermissionDenied
        form_class = self.get_form(request)
        form = form_class(request.POST)
        if not form.is_valid():
            return super().add_view(request, form_url, extra_context)
        tenant = form.cleaned_data.get("tenant") or self.editable_tenants(request).first()
        ctx = admin_context(request, tenant)
        key, raw_key = services.create_api_key(
            tenant,
            name=form.cleaned_data["name"],
            role=form.cleaned_data["role"],
            expires_at=form.cleaned_data.get("expires_at"),
            rate_limit=form.cleaned_data.get("rate_limit", ""),
            created_by=request.user,
            ctx=ctx,
        )
        # The raw key is rendered into this one response and never stored (not even in a message).
        return admin_page(
            self, request, "admin/tenants/apikey_created.html", "API key created", key=key, raw_key=raw_key
        )

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        for key in queryset:
            services.revoke_api_key(key, ctx=admin_context(request, key.tenant))
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["created_at", "actor", "action", "object_type", "object_repr", "ip_address"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor", "object_repr", "object_id"]
    date_hierarchy = "created_at"


admin.site.site_header = "Switchboard"
admin.site.site_title = "Switchboard admin"
admin.site.index_title = "Configuration"
