"""The same-tenant invariant: every FK and M2M between tenant-owned objects points into one tenant.

One check, run by `TenantOwned.clean()` (admin forms, `full_clean`) and `TenantOwned.save()` (the REST
API and every service), and by an `m2m_changed` guard for many-to-many links. A cross-tenant reference
is a `ValidationError` naming the offending field; `tenants.api.exception_handler` answers it with 400.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models.signals import m2m_changed


def is_tenant_owned(model: Any) -> bool:
    """Whether `model` carries a `tenant` FK (every TenantOwned model, and Membership-like rows)."""
    try:
        field = model._meta.get_field("tenant")
    except (FieldDoesNotExist, AttributeError):  # no tenant, or not a model at all
        return False
    return field.is_relation and field.related_model._meta.label == "tenants.Tenant"


def tenant_relations(model: type[models.Model]) -> list[Any]:
    """The model's FK/one-to-one fields to other tenant-owned models (the tenant FK itself excluded)."""
    return [
        field
        for field in model._meta.concrete_fields
        if field.is_relation and field.name != "tenant" and is_tenant_owned(field.related_model)
    ]


def tenant_m2m_relations(model: type[models.Model]) -> list[models.ManyToManyField]:
    """The model's own many-to-many fields to tenant-owned models."""
    return [field for field in model._meta.local_many_to_many if is_tenant_owned(field.related_model)]


def _other_tenant_message(model: Any) -> str:
    name = str(model._meta.verbose_name)
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"Choose {article} {name} of the same organisation."


def _target_tenant_id(instance: models.Model, field: Any) -> Any:
    if field.is_cached(instance):
        target = field.get_cached_value(instance)
        return getattr(target, "tenant_id", None)
    target_id = getattr(instance, field.attname)
    manager = field.related_model._base_manager
    return manager.filter(pk=target_id).values_list("tenant_id", flat=True).first()


def cross_tenant_errors(
    instance: models.Model,
    *,
    fields: Iterable[str] | None = None,
    m2m: Mapping[str, Iterable[models.Model]] | None = None,
) -> dict[str, list[str]]:
    """`{field: [message]}` for every reference of `instance` into another tenant; empty when none.

    `fields` limits the FK check (a save with `update_fields`); `m2m` gives many-to-many values that are
    not saved yet (a form's cleaned data). Without a tenant on `instance` there is nothing to compare.
    """
    tenant_id = getattr(instance, "tenant_id", None)
    if tenant_id is None:
        return {}
    only = set(fields) if fields is not None else None
    errors: dict[str, list[str]] = {}
    for field in tenant_relations(type(instance)):
        if only is not None and field.name not in only and field.attname not in only:
            continue
        if getattr(instance, field.attname) is None:
            continue
        if _target_tenant_id(instance, field) != tenant_id:
            errors[field.name] = [_other_tenant_message(field.related_model)]
    for name, values in (m2m or {}).items():
        m2m_field = type(instance)._meta.get_field(name)
        if any(getattr(value, "tenant_id", None) != tenant_id for value in values or ()):
            errors[name] = [_other_tenant_message(m2m_field.related_model)]
    return errors


def check_same_tenant(instance: models.Model, **kwargs: Any) -> None:
    """Raise `ValidationError({field: [...]})` when `instance` references another tenant's object."""
    errors = cross_tenant_errors(instance, **kwargs)
    if errors:
        raise ValidationError(errors)


def inherit_tenant(instance: Any) -> None:
    """Give an object without a tenant its parent's (`tenant_parent`: e.g. an endpoint's connection).

    An object that already has a tenant keeps it, so a parent of another tenant is refused by the
    check rather than silently moving the object.
    """
    parent_name = getattr(instance, "tenant_parent", None)
    if not parent_name or getattr(instance, "tenant_id", None) is not None:
        return
    field = instance._meta.get_field(parent_name)
    if getattr(instance, field.attname) is None:
        return
    tenant_id = _target_tenant_id(instance, field)
    if tenant_id is not None:
        instance.tenant_id = tenant_id


def _guard_m2m(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """A guard, not a side effect: a many-to-many link never joins two tenants, whoever adds it."""
    if action != "pre_add" or not pk_set:
        return
    foreign = model._base_manager.filter(pk__in=pk_set).exclude(tenant_id=instance.tenant_id)
    if foreign.exists():
        raise ValidationError(_other_tenant_message(model))


def install_m2m_guards(all_models: Iterable[type[models.Model]]) -> None:
    """Connect the guard to the through table of every M2M between tenant-owned models (app ready)."""
    for model in all_models:
        if not is_tenant_owned(model):
            continue
        for field in tenant_m2m_relations(model):
            m2m_changed.connect(
                _guard_m2m, sender=field.remote_field.through, dispatch_uid=f"tenants.same_tenant.{field}"
            )
