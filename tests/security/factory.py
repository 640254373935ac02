"""A generic factory for every tenant-owned model, so the standing security tests cover a model the day
it is added, without anyone writing a fixture for it.

`build(model, tenant)` saves a minimal instance: required fields get a unique plain value of their
type, required foreign keys an object built the same way in the same tenant.
"""

from __future__ import annotations

import itertools
from typing import Any

from django.apps import apps
from django.db import models
from django.utils import timezone

from tenants.invariants import is_tenant_owned, tenant_m2m_relations, tenant_relations
from tenants.models import TenantOwned

_counter = itertools.count(1)


def tenant_owned_models() -> list[type[models.Model]]:
    """Every concrete TenantOwned model of the project."""
    return [m for m in apps.get_models() if issubclass(m, TenantOwned) and not m._meta.abstract]


def fk_cases() -> list[tuple[type[models.Model], str]]:
    """(model, field) for every FK/one-to-one between tenant-owned models."""
    return [(m, f.name) for m in tenant_owned_models() for f in tenant_relations(m)]


def m2m_cases() -> list[tuple[type[models.Model], str]]:
    return [(m, f.name) for m in tenant_owned_models() for f in tenant_m2m_relations(m)]


def _value(field: models.Field, n: int) -> Any:
    if field.choices:
        return field.choices[0][0]
    if isinstance(field, models.URLField):
        return f"http://127.0.0.1:9/{n}"
    if isinstance(field, (models.SlugField, models.CharField, models.TextField)):
        text = f"x{n}"
        return text[: field.max_length] if field.max_length else text
    if isinstance(field, models.DateTimeField):
        return timezone.now()
    if isinstance(field, (models.IntegerField, models.FloatField, models.DecimalField)):
        return 1
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.UUIDField):
        import uuid

        return uuid.uuid4()
    raise NotImplementedError(f"{field.model.__name__}.{field.name}: no generic value for {type(field).__name__}")


def values_for(model: type[models.Model], tenant, **overrides: Any) -> dict[str, Any]:
    """Field values of a minimal valid `model` instance in `tenant` (parents built as needed)."""
    n = next(_counter)
    values: dict[str, Any] = {"tenant": tenant} if is_tenant_owned(model) else {}
    for field in model._meta.concrete_fields:
        if field.name in overrides or field.name == "tenant" or field.primary_key:
            continue
        if field.has_default() or field.null or getattr(field, "auto_now", False):
            continue
        if getattr(field, "auto_now_add", False):
            continue
        if field.is_relation:
            values[field.name] = build(field.related_model, tenant)
        else:
            values[field.name] = _value(field, n)
    values.update(overrides)
    return values


def build(model: type[models.Model], tenant, **overrides: Any) -> models.Model:
    """A saved minimal instance of `model` in `tenant`."""
    return model._default_manager.create(**values_for(model, tenant, **overrides))
