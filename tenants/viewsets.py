"""The base viewset every tenant-owned REST resource uses."""

from __future__ import annotations

from typing import Any, cast

from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from rest_framework import mixins, viewsets
from rest_framework.response import Response

from tenants import audit, querycache, scoping, validation
from tenants.models import AuditAction, Role
from tenants.validation import InUse

TENANT_WRITE_METHODS = ("perform_create", "perform_update", "perform_destroy")


class TenantGenericViewSet(viewsets.GenericViewSet):
    """One tenant's objects: scoped queryset, tenant set on create, audited writes.

    Reading needs `read_role` (viewer); writing needs `write_role` (admin); `action_roles` overrides.
    """

    read_role = Role.VIEWER
    write_role = Role.ADMIN
    action_roles: dict[str, str] = {}
    audited = True
    lookup_value_regex = "[^/]+"
    # The list's queryset depends on the tenant alone (not on query parameters or the user): its SQL is
    # compiled once per process and page slice (tenants.querycache) instead of on every request.
    list_compiled_once = False

    def __init_subclass__(cls, **kwargs) -> None:
        # DRF's mixins define perform_create/update/destroy too; listed before this class they would
        # silently win (objects saved without a tenant, writes unaudited). Refuse that at import time.
        super().__init_subclass__(**kwargs)
        for name in TENANT_WRITE_METHODS:
            owner = next(klass for klass in cls.__mro__ if name in vars(klass))
            if not issubclass(owner, TenantGenericViewSet):
                raise TypeError(
                    f"{cls.__name__}.{name} resolves to {owner.__name__}: list TenantGenericViewSet before DRF's mixins"
                )

    @property
    def tenant_context(self) -> scoping.TenantContext:
        return cast(scoping.TenantContext, self.request.auth)

    def get_queryset(self):
        return scoping.for_tenant(super().get_queryset(), self.tenant_context.tenant)

    def get_object(self):
        obj = scoping.get_for_tenant_or_404(self.get_queryset(), self.tenant_context.tenant, pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, obj)
        return obj

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        context["tenant"] = self.tenant_context.tenant if self.request and self.request.auth else None
        return context

    def perform_create(self, serializer) -> None:
        instance = serializer.save(tenant=self.tenant_context.tenant)
        self.audit(AuditAction.CREATED, instance)

    def perform_update(self, serializer) -> None:
        instance = serializer.save()
        self.audit(AuditAction.CHANGED, instance)

    def perform_destroy(self, instance) -> None:
        """Delete and audit; an object others still point at is refused (`InUse`, a 409) and nothing
        is written, the audit event included."""
        try:
            with transaction.atomic():
                self.audit(AuditAction.DELETED, instance)
                instance.delete()
        except (ProtectedError, RestrictedError) as exc:
            raise self.in_use(instance, exc) from None

    def in_use(self, instance, exc: ProtectedError | RestrictedError) -> InUse:
        """The refusal to delete `instance`; a resource may word it its own way."""
        return validation.in_use(instance, exc)

    def audit(self, action: str, instance) -> None:
        if self.audited:
            audit.record_event(self.tenant_context, action, instance)


class TenantModelViewSet(
    TenantGenericViewSet,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
):
    """Full CRUD over one tenant's objects."""

    def list(self, request, *args, **kwargs):
        tenant = self.tenant_context.tenant
        if not (self.list_compiled_once and tenant is not None and not self.filter_backends):
            return super().list(request, *args, **kwargs)
        # DRF's list, with the queryset built only if it is counted or compiled (tenants.querycache).
        model = self.queryset.model  # the class's queryset, the one get_queryset narrows
        rows = querycache.TenantList((type(self), "list"), model, tenant, self.get_queryset)
        page = self.paginate_queryset(rows)
        if page is None:
            return Response(self.get_serializer(rows.queryset, many=True).data)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
