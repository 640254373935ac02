"""Rules every app's validation shares: "unique within the tenant" and "in use: cannot be deleted".

The REST serializers (`tenants.api.TenantUniqueMixin`), the admin forms and the viewsets
(`tenants.viewsets`) all decide through these functions.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, ProtectedError, RestrictedError

from tenants.errors import DomainError, ErrorCode
from tenants.models import Tenant
from tenants.scoping import for_tenant


class InUse(DomainError):
    """An object others still point at cannot be deleted."""

    code = ErrorCode.CONFLICT


def taken_in_tenant(model: type[Model], tenant: Tenant | None, field: str, value: Any, *, instance: Any = None) -> bool:
    """Whether another object of `tenant` already has `value` in `field` (`instance` itself excluded)."""
    if tenant is None or value in (None, ""):
        return False
    clash = for_tenant(model, tenant).filter(**{field: value})
    if instance is not None and instance.pk is not None:
        clash = clash.exclude(pk=instance.pk)
    return clash.exists()


def describe_users(exc: ProtectedError | RestrictedError) -> str:
    """`connections: Billing` or `rules: Order status`: what still points at the object, by kind.

    A dependent part of a larger object (a rule's action) names that object through its
    `in_use_owner` property.
    """
    dependents = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
    kinds: dict[str, set[str]] = {}
    for obj in dependents:
        owner = getattr(obj, "in_use_owner", None) or obj
        kinds.setdefault(str(owner._meta.verbose_name_plural), set()).add(str(owner))
    return "; ".join(f"{kind}: {', '.join(sorted(names))}" for kind, names in sorted(kinds.items()))


def in_use(instance: Model, exc: ProtectedError | RestrictedError) -> InUse:
    """The refusal to delete `instance`: `This <kind> is used by <what>`."""
    return InUse(f"This {instance._meta.verbose_name} is used by {describe_users(exc)}")
