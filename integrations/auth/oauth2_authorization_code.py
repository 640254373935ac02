"""`oauth2_authorization_code`: an admin connects the credential once ("Connect" in the admin: the
provider's consent page with state and PKCE S256); the access and refresh tokens are stored encrypted
in `Credential.state`; the access token is refreshed ahead of expiry and on a 401, one refresh at a
time across processes, keeping a rotated refresh token. Without a usable grant every call is a
`failure` "OAuth2 authorization needed: reconnect the credential in the admin"."""

from __future__ import annotations

from integrations.auth import credential_state, oauth, token_cache
from integrations.auth.base import AuthorizationNeeded, AuthTestResult, Field
from integrations.auth.tokens import OAUTH2_CLIENT_FIELDS, TokenAuth


class AuthorizationCodeAuth(TokenAuth):
    label = "OAuth2 authorization code"
    cache_prefix = "oauth2ac"
    config_fields = (
        Field("authorize_url", required=True, kind="url"),
        Field("token_url", required=True, kind="url"),
        *OAUTH2_CLIENT_FIELDS,
    )
    secret_fields = (Field("client_secret", required=True),)
    connectable = True

    def cache_key(self) -> str:
        # One cached access token per grant: a reconnect starts afresh, a settings edit does not
        # (the grant's client fingerprint decides whether it still fits).
        state = self.credential.state or {}
        if state.get("status") != oauth.CONNECTED:
            state = credential_state.read(self.credential)
        if state.get("status") != oauth.CONNECTED:
            raise AuthorizationNeeded()
        return f"swb:{self.cache_prefix}:{self.credential.pk}:{state.get('grant', '')}"

    def fetch_token(self) -> token_cache.Token:
        rejected = self._rejected.values.get("access_token") if self._rejected else None
        return oauth.refresh_grant(
            self.credential, self.config, lambda: self.secret("client_secret"), rejected=rejected
        )

    def refresh_ahead(self, seconds: float) -> bool:
        """Refresh the grant now if its access token expires within `seconds` (the periodic refresh job);
        True when this call refreshed it. Same single-flight lock and `refresh_grant()` as a call's
        refresh, deciding on the grant as stored under the lock: a second or concurrent run sends nothing.
        Raises AuthorizationNeeded (reconnect needed) or CredentialUnavailable like `token()`."""
        refreshed = False

        def fetch() -> token_cache.Token:
            nonlocal refreshed
            before = credential_state.read(self.credential).get("access_token")
            token = oauth.refresh_grant(
                self.credential, self.config, lambda: self.secret("client_secret"), rejected=None, ahead=seconds
            )
            refreshed = token.values.get("access_token") != before
            return token

        token_cache.obtain(self.cache_key(), fetch, force=True)
        return refreshed

    def token_secrets(self, token: token_cache.Token) -> list[str]:
        refresh = (self.credential.state or {}).get("refresh_token", "")
        return [token.values.get("access_token", ""), refresh]

    def secret_values(self) -> list[str]:
        state = self.credential.state or {}
        return [*super().secret_values(), *(v for v in (state.get("refresh_token"), state.get("access_token")) if v)]

    def authorization_url(self, session, redirect_uri: str) -> str:
        return oauth.begin_authorization(self.credential, self.config, session, redirect_uri)

    def complete(self, pending: oauth.PendingAuthorization, code: str, *, ctx=None) -> None:
        oauth.complete_authorization(self.credential, self.config, self.secret("client_secret"), pending, code, ctx=ctx)

    def test(self) -> AuthTestResult:
        return self.describe(self.token(), "connected")
