"""`oauth2_client_credentials`: a token from the provider's token URL (RFC 6749 §4.4), sent as
`Authorization: Bearer <token>`, cached in the shared cache until shortly before it expires, fetched
by one process at a time, and fetched again once when the API rejects it."""

from __future__ import annotations

from oauthlib.oauth2 import BackendApplicationClient

from integrations.auth import oauth, token_cache
from integrations.auth.base import AuthTestResult, Field
from integrations.auth.tokens import OAUTH2_CLIENT_FIELDS, TokenAuth


class ClientCredentialsAuth(TokenAuth):
    label = "OAuth2 client credentials"
    cache_prefix = "oauth2cc"
    config_fields = (
        Field("token_url", required=True, kind="url"),
        *OAUTH2_CLIENT_FIELDS,
    )
    secret_fields = (Field("client_secret", required=True),)

    def fetch_token(self) -> token_cache.Token:
        client_secret = self.secret("client_secret")
        params = oauth.client_body_auth(self.config, client_secret)
        if self.config.get("audience"):
            params["audience"] = self.config["audience"]
        body = BackendApplicationClient(self.config["client_id"]).prepare_request_body(
            scope=self.config.get("scope") or None, **params
        )
        answer = oauth.request_token(
            self.config["token_url"],
            body,
            client_id=self.config["client_id"],
            client_secret=client_secret,
            client_auth=self.config["client_auth"],
        )
        values = {"access_token": answer["access_token"], "token_type": answer.get("token_type") or "Bearer"}
        return token_cache.Token.issued(values, oauth.lifetime(answer))

    def test(self) -> AuthTestResult:
        return self.describe(self.token(force=True), "token obtained")
