"""The audit trail: who did what to which object, when, from where."""

from __future__ import annotations

from django.db.models import Model

from tenants.models import AuditEvent, Tenant
from tenants.scoping import TenantContext


def record_event(ctx: TenantContext | None, action: str, obj: Model, *, tenant: Tenant | None = None) -> AuditEvent:
    """Record `action` on `obj`; the tenant is the object's own unless given."""
    tenant = tenant or getattr(obj, "tenant", None) or (ctx.tenant if ctx else None)
    if tenant is None:
        raise ValueError(f"no tenant to record the audit event of {obj!r} in")
    return AuditEvent.objects.create(
        tenant=tenant,
        actor_user=ctx.user if ctx and ctx.user is not None and ctx.user.pk else None,
        actor_api_key=ctx.api_key if ctx else None,
        actor=(ctx.actor_label if ctx else "system")[:300],
        action=action,
        object_type=str(obj._meta.verbose_name)[:100],
        object_id=str(obj.pk),
        object_repr=str(obj)[:300],
        ip_address=ctx.ip_address if ctx else None,
    )
