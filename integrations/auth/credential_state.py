"""A credential's runtime state (`Credential.state`, encrypted): what a type keeps for itself, such as
an OAuth2 grant. It changes behind the back of any credential object loaded earlier, so it is read
from and written to the database directly, and saving a credential's settings never writes it back."""

from __future__ import annotations

from integrations.models import Credential


def read(credential: Credential) -> dict:
    """The stored state as it is now in the database (decrypted)."""
    state = Credential.objects.filter(pk=credential.pk).values_list("state", flat=True).first()
    credential.state = state or {}
    return credential.state


def write(credential: Credential, state: dict) -> None:
    """Store `state` (encrypted by the field) without touching any other column or `updated_at`."""
    Credential.objects.filter(pk=credential.pk).update(state=state)
    credential.state = state


def save_settings(credential: Credential) -> None:
    """Save what an admin or API client edits, leaving the runtime state as the database has it.

    An edit form loaded before a token refresh would otherwise write the old (rotated, now invalid)
    refresh token back. A change of type drops the state: it belongs to the old type.
    """
    stored_type = None if credential._state.adding else _stored_type(credential)
    if stored_type is None or stored_type != credential.type:
        if stored_type is not None:
            credential.state = {}
        credential.save()
        return
    fields = [f.name for f in Credential._meta.concrete_fields if not f.primary_key and f.name != "state"]
    credential.save(update_fields=fields)


def _stored_type(credential: Credential) -> str | None:
    return Credential.objects.filter(pk=credential.pk).values_list("type", flat=True).first()
