"""The one tenant-scoping helper: every queryset in API views, admin and tasks goes through here.

An object of another tenant is indistinguishable from one that does not exist (404), so ids never leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import MultipleObjectsReturned, ObjectDoesNotExist, ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404

from tenants.errors import NotFound
from tenants.models import Membership, Role, Tenant, role_at_least

if TYPE_CHECKING:
    from tenants.models import ApiKey

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class TenantContext:
    """Who is acting, for which tenant, with which role (attached to API requests as `request.auth`)."""

    tenant: Tenant | None
    role: str | None
    user: Any = None
    api_key: ApiKey | None = None
    ip_address: str | None = None

    @property
    def actor_label(self) -> str:
        if self.api_key is not None:
            return f"API key {self.api_key.name} ({self.api_key.prefix}…)"
        if self.user is not None:
            return f"user {self.user.get_username()}"
        return "system"

    def has_role(self, required: str) -> bool:
        return self.tenant is not None and role_at_least(self.role, required)


def _queryset(source: QuerySet[M] | type[M]) -> QuerySet[M]:
    return source if isinstance(source, QuerySet) else source._default_manager.all()


def for_tenant(source: QuerySet[M] | type[M], tenant: Tenant | None) -> QuerySet[M]:
    """Only the objects of `tenant` (nothing at all without a tenant)."""
    queryset = _queryset(source)
    if tenant is None:
        return queryset.none()
    return queryset.filter(tenant=tenant)


def get_for_tenant(source: QuerySet[M] | type[M], tenant: Tenant | None, **lookup: Any) -> M:
    """One object of `tenant`, or `NotFound` — for a missing id, a malformed id and another tenant's id alike."""
    try:
        return for_tenant(source, tenant).get(**lookup)
    except (ObjectDoesNotExist, MultipleObjectsReturned, ValidationError, ValueError, TypeError):
        raise NotFound() from None


def get_for_tenant_or_404(source: QuerySet[M] | type[M], tenant: Tenant | None, **lookup: Any) -> M:
    """`get_for_tenant` for views and the admin: Django's Http404 instead of `NotFound`."""
    try:
        return get_for_tenant(source, tenant, **lookup)
    except NotFound:
        raise Http404("Not found.") from None


def tenants_for_user(user: Any) -> QuerySet[Tenant]:
    """The tenants a logged-in user may see: all for a superuser, else those they are a member of."""
    if user is None or not user.is_authenticated:
        return Tenant.objects.none()
    if user.is_superuser:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user)


def for_user(source: QuerySet[M] | type[M], user: Any, *, min_role: str = Role.VIEWER) -> QuerySet[M]:
    """Only the objects of tenants where `user` holds at least `min_role` (admin site)."""
    queryset = _queryset(source)
    if user is None or not user.is_authenticated:
        return queryset.none()
    if user.is_superuser:
        return queryset
    return queryset.filter(tenant__in=tenant_ids_for_user(user, min_role))


def tenant_ids_for_user(user: Any, min_role: str = Role.VIEWER) -> list[Any]:
    roles = [role for role in Role.values if role_at_least(role, min_role)]
    return list(Membership.objects.filter(user=user, role__in=roles).values_list("tenant_id", flat=True))


def roles_by_tenant(user: Any) -> dict[Any, str]:
    """The user's role in each of their tenants (tenant id → role), in one query."""
    return dict(Membership.objects.filter(user=user).values_list("tenant_id", "role"))


def role_for_user(user: Any, tenant: Tenant) -> str | None:
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.OWNER
    return Membership.objects.filter(user=user, tenant=tenant).values_list("role", flat=True).first()
