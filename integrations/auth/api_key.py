from __future__ import annotations

from integrations.auth.base import AuthTarget, CredentialType, Field


class ApiKeyAuth(CredentialType):
    """A key in a header (`X-Api-Key: <key>`) or in the query string (`?api_key=<key>`)."""

    label = "API key"
    config_fields = (
        Field("placement", default="header", choices=("header", "query")),
        Field("header_name", default="X-Api-Key", kind="header"),
        Field("param_name", default="api_key"),
    )
    secret_fields = (Field("key", required=True),)

    def apply(self, request: AuthTarget) -> None:
        if self.config["placement"] == "query":
            request.query[self.config["param_name"]] = self.secret("key")
        else:
            request.headers[self.config["header_name"]] = self.secret("key")

    def redacted_headers(self) -> set[str]:
        return {self.config["header_name"].lower()} if self.config["placement"] == "header" else set()

    def redacted_query(self) -> set[str]:
        return {self.config["param_name"]} if self.config["placement"] == "query" else set()
