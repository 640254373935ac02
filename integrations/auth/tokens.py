"""What the token-based credential types share: a token in the shared cache (`integrations.auth.token_cache`),
renewed once on a 401 or when the response body says the token expired.

`expired_token_condition` (config) is a JMESPath expression over a JSON response body; when it is
truthy (e.g. `error.code == 'TOKEN_EXPIRED'`) the answer counts as a rejected token, like a 401.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from typing import Any, ClassVar
from urllib.parse import quote

from jmespath.exceptions import JMESPathError

from integrations import mapping
from integrations.auth import token_cache
from integrations.auth.base import AuthTarget, AuthTestResult, CredentialType, CredentialUnavailable, Field
from tenants.secrets import MASK, mask

EXPIRED_TOKEN_CONDITION = Field(
    "expired_token_condition",
    help="JMESPath over the JSON response body; truthy means the token expired (e.g. error.code == 'TOKEN_EXPIRED')",
)

# The client settings both OAuth2 types share (after their URLs).
OAUTH2_CLIENT_FIELDS = (
    Field("client_id", required=True),
    Field("scope", help="Space-separated scopes"),
    Field("audience", help="Sent as the audience parameter (Auth0, Okta...)"),
    Field("client_auth", default="basic", choices=("basic", "body"), help="Basic header or body parameters"),
    EXPIRED_TOKEN_CONDITION,
)


class TokenAuth(CredentialType):
    """A credential type whose runtime secret is a token fetched by `fetch_token()` and cached."""

    cache_prefix: ClassVar[str] = "token"

    def __init__(self, credential) -> None:
        super().__init__(credential)
        self._token: token_cache.Token | None = None
        self._rejected: token_cache.Token | None = None
        self._seen: list[str] = []

    # --- to implement ---------------------------------------------------------------------------------
    def fetch_token(self) -> token_cache.Token:
        """Obtain a new token (called under the single-flight lock). Raise CredentialUnavailable."""
        raise NotImplementedError

    def place(self, token: token_cache.Token, request: AuthTarget) -> None:
        """Put `token` into the request."""
        request.headers["Authorization"] = f"{_bearer(token)} {token.values['access_token']}"

    def token_secrets(self, token: token_cache.Token) -> list[str]:
        return [token.values.get("access_token", "")]

    # --- shared behaviour -----------------------------------------------------------------------------
    def cache_key(self) -> str:
        """Changes with the credential's settings, so an edited credential never uses an old token."""
        changed = self.credential.updated_at.isoformat() if self.credential.updated_at else ""
        digest = hashlib.sha256(json.dumps([self.config, changed], sort_keys=True, default=str).encode()).hexdigest()
        return f"swb:{self.cache_prefix}:{self.credential.pk}:{digest[:16]}"

    def token(self, *, force: bool = False) -> token_cache.Token:
        token = token_cache.obtain(self.cache_key(), self.fetch_token, force=force)
        self._token = token
        self._seen.extend(s for s in self.token_secrets(token) if s)
        return token

    def apply(self, request: AuthTarget) -> None:
        self.place(self.token(), request)

    def apply_dry_run(self, request: AuthTarget) -> None:
        # No token is fetched for a dry run: the request shows where it would go, masked.
        request.headers["Authorization"] = f"Bearer {MASK}"

    def token_rejected(self, response: Any) -> bool:
        if response.status_code == 401:
            return True
        condition = self.config.get("expired_token_condition")
        if not condition:
            return False
        try:
            body = json.loads(response.content)
        except ValueError:
            return False
        try:
            return bool(mapping.search(mapping.compile_expression(condition), body))
        except (JMESPathError, ValueError):
            return False

    def on_unauthorized(self, response: Any) -> bool:
        if self._token is None:
            return False
        self._rejected = self._token
        token_cache.invalidate(self.cache_key(), self._token.id)
        return True

    def secret_values(self) -> list[str]:
        values = [*super().secret_values(), *self._seen]
        client_id = self.config.get("client_id")
        if client_id and "client_secret" in {f.name for f in self.secret_fields}:
            with contextlib.suppress(CredentialUnavailable):
                values += client_pairs(client_id, str(self.secret("client_secret") or ""))
        return values

    def redacted_headers(self) -> set[str]:
        return {"authorization"}

    def describe(self, token: token_cache.Token, message: str) -> AuthTestResult:
        """The console's report of a token: its type and expiry, the token itself only masked."""
        expires_in = int(token.expires_at - time.time()) if token.expires_at else None
        details = {
            "token_type": token.values.get("token_type", ""),
            "expires_in": expires_in,
            "token": mask(token.values.get("access_token", "")),
        }
        return AuthTestResult(ok=True, message=message, details=details)

    @classmethod
    def check(cls, config: dict, secrets: dict, errors: dict) -> None:
        condition = config.get("expired_token_condition")
        if condition:
            try:
                mapping.compile_expression(condition)
            except ValueError as exc:
                message = f"Not a valid JMESPath expression: {exc}"
                errors.setdefault("config", {})["expired_token_condition"] = [message]


def client_pairs(client_id: str, client_secret: str) -> list[str]:
    """The `id:secret` pair of HTTP Basic client authentication (RFC 6749 §2.3.1: each part form-encoded
    first; the first is what is sent), plus the raw pair: secrets whose base64 must be scrubbed too."""
    return [f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}", f"{client_id}:{client_secret}"]


def _bearer(token: token_cache.Token) -> str:
    kind = str(token.values.get("token_type") or "Bearer")
    return "Bearer" if kind.lower() == "bearer" else kind
