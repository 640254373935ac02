from __future__ import annotations

from integrations.auth.base import CredentialType


class NoAuth(CredentialType):
    """Sends nothing."""

    label = "None"
