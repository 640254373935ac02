from __future__ import annotations

from integrations.auth.base import AuthTarget, CredentialType, Field


class QueryParamsAuth(CredentialType):
    """Several secret name/value pairs appended to the query string."""

    label = "Query parameters"
    secret_fields = (Field("params", required=True, kind="map", help="Parameter name → value"),)

    def apply(self, request: AuthTarget) -> None:
        request.query.update(self.secret("params"))

    def redacted_query(self) -> set[str]:
        return set((self.credential.secrets or {}).get("params") or {})
