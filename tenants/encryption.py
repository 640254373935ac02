"""Key rotation for encrypted fields: FIELD_ENCRYPTION_KEYS lists keys, the first encrypts, all decrypt.

To rotate: put a new key first (keep the old ones after it), deploy, run
`manage.py rotate_encryption_keys` (re-encrypts every value with the new key), then drop the old keys.
"""

from __future__ import annotations

from django.apps import apps
from django.db import transaction
from django.db.models import Model
from fernet_fields import EncryptedField


def encrypted_field_names(model: type[Model]) -> list[str]:
    return [field.name for field in model._meta.concrete_fields if isinstance(field, EncryptedField)]


def reset_key_cache() -> None:
    """Make every encrypted field read FERNET_KEYS again (djfernet caches them per field)."""
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedField):
                for cached in ("keys", "fernet_keys", "fernet"):
                    field.__dict__.pop(cached, None)


def reencrypt_all(batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every encrypted value of every model with the first key; returns rows per model."""
    counts: dict[str, int] = {}
    for model in apps.get_models():
        names = encrypted_field_names(model)
        if not names:
            continue
        manager = model._default_manager
        with transaction.atomic():
            rows = manager.only("pk", *names).iterator(chunk_size=batch_size)
            for count, obj in enumerate(rows, start=1):
                # update() encrypts through the field with the first key and touches nothing else.
                manager.filter(pk=obj.pk).update(**{name: getattr(obj, name) for name in names})
                counts[model._meta.label] = count
    return counts
