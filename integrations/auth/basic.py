from __future__ import annotations

import base64

from integrations.auth.base import AuthTarget, CredentialType, Field


class BasicAuth(CredentialType):
    """`Authorization: Basic base64(username:password)`."""

    label = "Basic auth"
    config_fields = (Field("username", required=True),)
    secret_fields = (Field("password", required=True),)

    def apply(self, request: AuthTarget) -> None:
        pair = f"{self.config['username']}:{self.secret('password')}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")

    def redacted_headers(self) -> set[str]:
        return {"authorization"}

    def secret_values(self) -> list[str]:
        values = super().secret_values()
        try:
            pair = f"{self.config['username']}:{self.secret('password')}".encode()
        except Exception:
            return values
        return [*values, base64.b64encode(pair).decode("ascii")]
