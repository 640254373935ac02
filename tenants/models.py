"""Tenants, their members and API keys, and the audit trail."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from fernet_fields import EncryptedTextField

from tenants import invariants
from tenants.ratelimit import COUNTER_TABLE, validate_spec
from tenants.secrets import hash_token


class Role(models.TextChoices):
    """Roles, each including the one before."""

    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"
    OWNER = "owner", "Owner"


ROLE_RANK: dict[str, int] = {Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3, Role.OWNER: 4}


def role_at_least(role: str | None, required: str) -> bool:
    return role is not None and ROLE_RANK.get(role, 0) >= ROLE_RANK[required]


def generate_webhook_secret() -> str:
    """A Standard Webhooks style secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    webhook_secret = EncryptedTextField(default=generate_webhook_secret)
    # Optional per-tenant AI provider (OpenAI-compatible); blank means the global default.
    llm_base_url = models.URLField(blank=True)
    llm_model = models.CharField(max_length=200, blank=True)
    llm_api_key = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantOwned(models.Model):
    """Base for every tenant-owned object: each belongs to exactly one tenant, and every object it
    references through an FK or M2M belongs to that same tenant (`tenants.invariants`), checked on
    `clean()` and again on every `save()` so the admin, the API and services cannot break it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    # The FK whose tenant an object takes when it has none yet (an endpoint's connection).
    tenant_parent: ClassVar[str | None] = None

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        invariants.inherit_tenant(self)
        invariants.check_same_tenant(self, fields=kwargs.get("update_fields"))
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        invariants.inherit_tenant(self)
        invariants.check_same_tenant(self)


class Membership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} of {self.tenant}"


API_KEY_PREFIX = "swb_"
API_KEY_VISIBLE_CHARS = 12


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiKey(TenantOwned):
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    prefix = models.CharField(max_length=API_KEY_VISIBLE_CHARS, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    rate_limit = models.CharField(
        max_length=32,
        blank=True,
        validators=[validate_spec],
        help_text="Requests/seconds for this key (e.g. 1200/60); empty: the deployment's API_RATE_LIMIT",
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    @staticmethod
    def new_raw_key() -> str:
        return API_KEY_PREFIX + secrets.token_urlsafe(32)

    def set_key(self, raw_key: str) -> None:
        self.prefix = raw_key[:API_KEY_VISIBLE_CHARS]
        self.key_hash = hash_token(raw_key)


class RateLimitCounter(models.Model):
    """One rate-limit window's count, when the shared cache is the database (see tenants.ratelimit)."""

    key = models.CharField(max_length=200, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = COUNTER_TABLE

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


class AuditAction(models.TextChoices):
    CREATED = "created"
    CHANGED = "changed"
    DELETED = "deleted"
    TESTED = "tested"
    REVEALED = "revealed"
    ROTATED = "rotated"
    REVOKED = "revoked"


class AuditEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.CharField(max_length=300, help_text="Who acted, as shown at the time")
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=100)
    object_repr = models.CharField(max_length=300)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type} {self.object_repr}"
