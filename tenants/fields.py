"""Encrypted model fields shared by every app (djfernet underneath: MultiFernet, key rotation)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver
from fernet_fields import EncryptedField, EncryptedTextField

if TYPE_CHECKING:
    # djfernet has no type information: to django-stubs the field holds any JSON value.
    _JSONFieldBase = models.Field[Any, Any]
else:
    _JSONFieldBase = EncryptedTextField


class EncryptedJSONField(_JSONFieldBase):
    """A JSON value (e.g. a map of secret headers) stored as one Fernet token.

    The raw column holds only ciphertext; Python sees the decoded JSON value.
    """

    def get_db_prep_save(self, value: Any, connection):
        if value is None:
            return None
        return super().get_db_prep_save(json.dumps(value, separators=(",", ":"), sort_keys=True), connection)

    def from_db_value(self, value, expression, connection, *args):
        if value is None:
            return None
        return json.loads(self.fernet.decrypt(bytes(value)).decode())

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj) -> str:
        return json.dumps(self.value_from_object(obj))


# djfernet caches each field's keys and its (Multi)Fernet on the field instance the first time it is
# used, so a change of settings.FERNET_KEYS (key rotation, tests) is not seen until these are dropped.
_FERNET_CACHED_PROPERTIES = ("keys", "fernet_keys", "fernet")


def encrypted_fields() -> list[tuple[type[models.Model], list[EncryptedField]]]:
    """Every installed model with its Fernet-encrypted fields (djfernet's, EncryptedJSONField included)."""
    found = []
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
        if fields:
            found.append((model, fields))
    return found


def reset_encryption_keys() -> None:
    """Make every encrypted field read settings.FERNET_KEYS again (after the keys changed)."""
    for _, fields in encrypted_fields():
        for f in fields:
            for name in _FERNET_CACHED_PROPERTIES:
                f.__dict__.pop(name, None)


@receiver(setting_changed)
def _keys_changed(*, setting: str, **kwargs) -> None:
    if setting in ("FERNET_KEYS", "FERNET_USE_HKDF"):
        reset_encryption_keys()
