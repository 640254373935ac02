"""The credential type registry: type name → dotted path of its `CredentialType`, imported lazily.

Adding a type means adding one module under `integrations/auth/` and one line here.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

from integrations.auth.base import AuthTarget, CredentialInvalid, CredentialType, CredentialUnavailable

if TYPE_CHECKING:
    from integrations.models import Credential

__all__ = ["CREDENTIAL_TYPES", "AuthTarget", "CredentialInvalid", "CredentialType", "CredentialUnavailable"]

CREDENTIAL_TYPES: dict[str, str] = {
    "none": "integrations.auth.none.NoAuth",
    "api_key": "integrations.auth.api_key.ApiKeyAuth",
    "bearer": "integrations.auth.bearer.BearerAuth",
    "basic": "integrations.auth.basic.BasicAuth",
    "query_params": "integrations.auth.query_params.QueryParamsAuth",
}


@cache
def get_type(name: str) -> type[CredentialType]:
    """The class of credential type `name`; KeyError when no such type is registered."""
    return import_string(CREDENTIAL_TYPES[name])


def type_choices() -> list[tuple[str, str]]:
    return [(name, get_type(name).label or name) for name in CREDENTIAL_TYPES]


def for_credential(credential: Credential | None) -> CredentialType | None:
    """The runtime authenticator of `credential` (None for no credential)."""
    if credential is None:
        return None
    try:
        cls = get_type(credential.type)
    except KeyError:
        raise CredentialUnavailable(f"unknown credential type {credential.type!r}") from None
    return cls(credential)
