"""The demo tenant `make run` loads. Each app may add to it with a `<app>/demo.py` defining `load(tenant)`."""

from __future__ import annotations

import importlib

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from tenants import scoping
from tenants.models import ApiKey, Membership, Role, Tenant
from tenants.services import create_api_key

DEMO_SLUG = "demo"
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_KEY_NAME = "make run demo key"


@transaction.atomic
def load_demo() -> tuple[Tenant, str]:
    """Create (or refresh) the demo tenant and its owner; return it with a fresh owner API key.

    Idempotent: running it again keeps the data and replaces the previous demo key.
    """
    tenant, _ = Tenant.objects.get_or_create(slug=DEMO_SLUG, defaults={"name": "Demo Co"})
    user, created = get_user_model().objects.get_or_create(username=DEMO_USER, defaults={"is_staff": True})
    if created or not user.has_usable_password():
        user.set_password(DEMO_PASSWORD)
        user.is_staff = True
        user.save()
    Membership.objects.update_or_create(tenant=tenant, user=user, defaults={"role": Role.OWNER})
    scoping.for_tenant(ApiKey, tenant).filter(name=DEMO_KEY_NAME, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    _, raw_key = create_api_key(tenant, name=DEMO_KEY_NAME, role=Role.OWNER, created_by=user)
    for app_config in apps.get_app_configs():
        if app_config.name == "tenants":
            continue
        try:
            module = importlib.import_module(f"{app_config.name}.demo")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app_config.name}.demo":
                raise
            continue
        module.load(tenant)
    return tenant, raw_key
