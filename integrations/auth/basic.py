from __future__ import annotations

import base64

from integrations.auth.base import AuthTarget, CredentialType, CredentialUnavailable, Field


class BasicAuth(CredentialType):
    """`Authorization: Basic base64(username:password)`."""

    label = "Basic auth"
    config_fields = (Field("username", required=True),)
    secret_fields = (Field("password", required=True),)

    def _encoded(self) -> str:
        pair = f"{self.config['username']}:{self.secret('password')}".encode()
        return base64.b64encode(pair).decode("ascii")

    def apply(self, request: AuthTarget) -> None:
        request.headers["Authorization"] = "Basic " + self._encoded()

    def redacted_headers(self) -> set[str]:
        return {"authorization"}

    def secret_values(self) -> list[str]:
        # The encoded pair is as secret as the password (it decodes to it).
        try:
            return [*super().secret_values(), self._encoded()]
        except CredentialUnavailable:
            return super().secret_values()
