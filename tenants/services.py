"""Tenant service functions used by the API, the admin and the management commands alike."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from tenants import audit
from tenants.auth import forget_api_key
from tenants.models import ApiKey, AuditAction, Membership, Role, Tenant, generate_webhook_secret
from tenants.scoping import TenantContext


def create_api_key(
    tenant: Tenant,
    *,
    name: str,
    role: str = Role.MEMBER,
    created_by=None,
    expires_at: datetime | None = None,
    rate_limit: str = "",
    ctx: TenantContext | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw value — the only time the raw value exists.

    `rate_limit` ("<count>/<seconds>", validated by the model field) overrides `API_RATE_LIMIT`.
    """
    raw_key = ApiKey.new_raw_key()
    key = ApiKey(
        tenant=tenant, name=name, role=role, created_by=created_by, expires_at=expires_at, rate_limit=rate_limit
    )
    key.set_key(raw_key)
    key.save()
    audit.record_event(ctx, AuditAction.CREATED, key)
    return key, raw_key


def revoke_api_key(key: ApiKey, *, ctx: TenantContext | None = None) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        forget_api_key(key.key_hash)  # other processes forget it within API_KEY_CACHE_SECONDS
        audit.record_event(ctx, AuditAction.REVOKED, key)
    return key


def rotate_webhook_secret(tenant: Tenant, *, ctx: TenantContext | None = None) -> str:
    tenant.webhook_secret = generate_webhook_secret()
    tenant.save(update_fields=["webhook_secret"])
    audit.record_event(ctx, AuditAction.ROTATED, tenant, tenant=tenant)
    return tenant.webhook_secret


def unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "tenant"
    slug, n = base, 2
    while Tenant.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def bootstrap_tenant(
    name: str, *, admin_user: str | None = None, password: str | None = None, email: str = ""
) -> tuple[Tenant, ApiKey, str]:
    """Create a tenant (and optionally a staff user who owns it) and a first owner API key."""
    tenant = Tenant.objects.create(name=name, slug=unique_slug(name))
    user = None
    if admin_user:
        user, created = get_user_model().objects.get_or_create(username=admin_user, defaults={"email": email})
        user.is_staff = True
        if password:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.save()
        Membership.objects.update_or_create(tenant=tenant, user=user, defaults={"role": Role.OWNER})
    key, raw_key = create_api_key(tenant, name="Bootstrap owner key", role=Role.OWNER, created_by=user)
    return tenant, key, raw_key
