from __future__ import annotations

from integrations.auth.base import AuthTarget, CredentialType, Field


class BearerAuth(CredentialType):
    """`Authorization: Bearer <token>`."""

    label = "Bearer token"
    secret_fields = (Field("token", required=True),)

    def apply(self, request: AuthTarget) -> None:
        request.headers["Authorization"] = f"Bearer {self.secret('token')}"

    def redacted_headers(self) -> set[str]:
        return {"authorization"}
