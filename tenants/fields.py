"""Encrypted model fields shared by every app (djfernet underneath: MultiFernet, key rotation)."""

from __future__ import annotations

import json
from typing import Any

from fernet_fields import EncryptedTextField


class EncryptedJSONField(EncryptedTextField):
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
