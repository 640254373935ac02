"""OAuth2 for the credential types: token requests, the "Connect" dance, and the stored grant.

Every request to a provider goes through `integrations.http` (SSRF policy, timeouts, size limit) like
any other outgoing call; oauthlib's client classes build the request bodies and parse the answers.

The authorization-code flow (RFC 6749 §4.1 with PKCE, RFC 7636 S256):
1. `begin_authorization()` makes a `state` and a code verifier, remembers them in the admin's session
   (the verifier encrypted; bound to the credential and its tenant; single use; 10 minutes), and
   returns the provider's authorize URL;
2. the provider sends the admin back to the one callback URL with `code` and `state`;
   `take_pending()` consumes the state, the admin view checks the credential is the admin's, and
   `complete_authorization()` exchanges the code with the verifier and stores the grant encrypted in
   `Credential.state`;
3. `refresh_grant()` renews the access token with the refresh token (a rotated refresh token replaces
   the old one); `invalid_grant` or no grant at all puts the credential in "reconnect needed".
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from oauthlib.common import add_params_to_uri
from oauthlib.oauth2 import WebApplicationClient
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from integrations import http
from integrations.auth import credential_state, token_cache
from integrations.auth.base import AuthorizationNeeded, CredentialUnavailable
from integrations.auth.tokens import client_pairs
from integrations.models import Credential
from integrations.redaction import Redactor
from tenants import audit
from tenants.models import AuditAction

logger = logging.getLogger(__name__)

TOKEN_CONNECT_TIMEOUT = 3.0
TOKEN_READ_TIMEOUT = 10.0
TOKEN_DEADLINE = 15.0
TOKEN_MAX_BYTES = 256 * 1024
PENDING_SESSION_KEY = "oauth2_pending"
PENDING_SECONDS = 600
CONNECTED = "connected"
RECONNECT_NEEDED = "reconnect_needed"


class TokenRequestFailed(token_cache.FetchFailed):
    """The token endpoint refused or failed; `error` is the provider's OAuth2 error code when it gave one."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


class ConnectFailed(Exception):
    """The Connect dance could not finish; the message is shown to the admin (no secret in it)."""


# --- token requests --------------------------------------------------------------------------------


def request_token(
    token_url: str, body: str, *, client_id: str, client_secret: str, client_auth: str = "basic"
) -> dict[str, Any]:
    """POST `body` (form-encoded, built by oauthlib) to the token endpoint and return the parsed token.

    Client authentication is the HTTP Basic header (RFC 6749 §2.3.1, id and secret form-encoded first)
    or `client_id`/`client_secret` in the body (the caller puts them there). Raises
    `TokenRequestFailed` with the provider's `error: error_description`, never a secret.
    """
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    if client_auth == "basic":
        pair = client_pairs(client_id, client_secret)[0].encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    try:
        response = http.send(
            "POST",
            token_url,
            headers=headers,
            data=body,
            connect_timeout=TOKEN_CONNECT_TIMEOUT,
            read_timeout=TOKEN_READ_TIMEOUT,
            deadline=TOKEN_DEADLINE,
            max_bytes=TOKEN_MAX_BYTES,
        )
    except http.OutboundError as exc:
        raise TokenRequestFailed(f"token request failed: {exc}") from None
    # A provider that echoes the request must not hand back the secret in any spelling, the Basic
    # header's encoded pair included.
    return parse_token_response(response, hide=(client_secret, *client_pairs(client_id, client_secret)))


def _request_with(config: dict, body: str, client_secret: str) -> dict[str, Any]:
    return request_token(
        config["token_url"],
        body,
        client_id=config["client_id"],
        client_secret=client_secret,
        client_auth=config.get("client_auth", "basic"),
    )


def parse_token_response(response: http.HttpResponse, *, hide: tuple[str, ...] = ()) -> dict[str, Any]:
    try:
        token = WebApplicationClient(None).parse_request_body_response(response.text)
    except OAuth2Error as exc:
        if exc.error != "missing_token" or response.ok:
            text = exc.error + (f": {exc.description}" if exc.description else "")
            raise TokenRequestFailed(
                f"token request refused (HTTP {response.status_code}): {_scrub(text, hide)}", exc.error
            ) from None
        raise TokenRequestFailed(f"token endpoint answered HTTP {response.status_code}") from None
    except (ValueError, TypeError, Warning):
        raise TokenRequestFailed(f"token endpoint answered HTTP {response.status_code} with no usable token") from None
    if not response.ok:
        raise TokenRequestFailed(f"token endpoint answered HTTP {response.status_code}")
    return dict(token)


def _scrub(text: str, hide: tuple[str, ...]) -> str:
    # Scrub before cutting, so a secret straddling the cut cannot survive as a prefix.
    return Redactor(values=hide).text(text)[:500]


def lifetime(token: dict) -> float | None:
    try:
        seconds = float(token["expires_in"])
    except (KeyError, TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


def client_body_auth(config: dict, client_secret: str) -> dict[str, Any]:
    """oauthlib's body-building arguments for client authentication (none with the Basic header)."""
    if config.get("client_auth") == "body":
        return {"include_client_id": True, "client_secret": client_secret}
    return {"include_client_id": False}


# --- the authorization-code grant ------------------------------------------------------------------


@dataclass(frozen=True)
class PendingAuthorization:
    credential_id: str
    tenant_id: str
    verifier: str
    redirect_uri: str


def _state_key(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def client_fingerprint(config: dict) -> str:
    """Changes when the grant no longer fits the settings (another provider, client or scope)."""
    parts = [config.get(name) or "" for name in ("authorize_url", "token_url", "client_id", "scope")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def begin_authorization(credential: Credential, config: dict, session: Any, redirect_uri: str) -> str:
    """The provider's authorize URL for `credential`, with a fresh state and PKCE S256 challenge."""
    client = WebApplicationClient(config["client_id"])
    verifier = client.create_code_verifier(64)
    challenge = client.create_code_challenge(verifier, "S256")
    state = secrets.token_urlsafe(32)
    params = [("response_type", "code"), ("client_id", config["client_id"]), ("redirect_uri", redirect_uri)]
    if config.get("scope"):
        params.append(("scope", config["scope"]))
    if config.get("audience"):
        params.append(("audience", config["audience"]))
    params += [("state", state), ("code_challenge", challenge), ("code_challenge_method", "S256")]
    # Not oauthlib's prepare_request_uri: it refuses http URLs, which the SSRF policy already governs.
    url = add_params_to_uri(config["authorize_url"], params)
    now = time.time()
    pending = {k: v for k, v in (session.get(PENDING_SESSION_KEY) or {}).items() if v.get("expires", 0) > now}
    pending[_state_key(state)] = {
        "credential": str(credential.pk),
        "tenant": str(credential.tenant_id),
        "verifier": token_cache.seal(verifier),
        "redirect_uri": redirect_uri,
        "expires": now + PENDING_SECONDS,
    }
    session[PENDING_SESSION_KEY] = pending
    return url


def take_pending(session: Any, state: str) -> PendingAuthorization:
    """Consume the pending authorization `state` names: it must come from this session, be unused and
    unexpired. Raises ConnectFailed."""
    key = _state_key(state or "")
    pending = dict(session.get(PENDING_SESSION_KEY) or {})
    entry = pending.pop(key, None)
    session[PENDING_SESSION_KEY] = pending
    if not state or entry is None or entry.get("expires", 0) < time.time():
        raise ConnectFailed("This authorization is unknown or has expired: click Connect again.")
    # Single use across processes too (two tabs replaying the same callback).
    if not cache.add(f"swb:oauth2:state-used:{key}", 1, timeout=PENDING_SECONDS * 2):
        raise ConnectFailed("This authorization was already used: click Connect again.")
    verifier = token_cache.unseal(entry.get("verifier"))
    if not isinstance(verifier, str):
        raise ConnectFailed("This authorization is unknown or has expired: click Connect again.")
    return PendingAuthorization(entry["credential"], entry["tenant"], verifier, entry["redirect_uri"])


def complete_authorization(
    credential: Credential, config: dict, client_secret: str, pending: PendingAuthorization, code: str, *, ctx=None
) -> dict:
    """Exchange `code` (with the PKCE verifier) and store the grant; returns the new state (no secrets
    should be shown from it). Raises ConnectFailed."""
    if str(credential.pk) != pending.credential_id or str(credential.tenant_id) != pending.tenant_id:
        raise ConnectFailed("This authorization belongs to another credential.")
    if not code:
        raise ConnectFailed("The provider sent no authorization code.")
    client = WebApplicationClient(config["client_id"])
    body = client.prepare_request_body(
        code=code,
        redirect_uri=pending.redirect_uri,
        code_verifier=pending.verifier,
        **client_body_auth(config, client_secret),
    )
    try:
        token = _request_with(config, body, client_secret)
    except CredentialUnavailable as exc:
        record(ctx, credential, f"connect failed: {exc}")
        raise ConnectFailed(f"The provider refused the authorization: {exc}") from None
    state = _grant_state(token, config, previous={})
    credential_state.write(credential, state)
    record(ctx, credential, "connected")
    return state


def _grant_state(token: dict, config: dict, previous: dict) -> dict:
    now = time.time()
    issued = token_cache.Token.issued({}, lifetime(token))
    return {
        "status": CONNECTED,
        "grant": previous.get("grant") or secrets.token_hex(8),
        "client": client_fingerprint(config),
        "access_token": token["access_token"],
        "token_type": token.get("token_type") or "Bearer",
        # Rotation: a refresh answer with a new refresh token replaces the old one; without one the
        # old refresh token stays valid (RFC 6749 §6).
        "refresh_token": token.get("refresh_token") or previous.get("refresh_token") or "",
        "expires_at": issued.expires_at,
        "renew_at": issued.renew_at,
        "scope": " ".join(token["scope"]) if isinstance(token.get("scope"), list) else token.get("scope") or "",
        "connected_at": previous.get("connected_at") or _iso(now),
        "refreshed_at": _iso(now),
    }


def grant_token(state: dict) -> token_cache.Token:
    """The stored access token as a cacheable Token (renewed on the schedule set when it was issued)."""
    values = {"access_token": state["access_token"], "token_type": state.get("token_type") or "Bearer"}
    return token_cache.Token(values=values, expires_at=state.get("expires_at"), renew_at=state.get("renew_at"))


def refresh_grant(
    credential: Credential, config: dict, client_secret_getter, *, rejected: str | None, ahead: float = 0
) -> token_cache.Token:
    """A usable access token from the stored grant: the stored one while fresh (and not the one just
    rejected), else a refreshed one. Runs under the token cache's lock, so once at a time everywhere.

    With `ahead` (seconds; the periodic refresh job) a grant that has a refresh token is also refreshed
    when its access token expires within that time. The decision is made on the grant as stored now,
    under the lock, so a job that runs again or at the same time finds it renewed and sends nothing.
    """
    state = credential_state.read(credential)
    if state.get("status") != CONNECTED or state.get("client") != client_fingerprint(config):
        raise AuthorizationNeeded()
    token = grant_token(state)
    if token.fresh() and state.get("access_token") != rejected and not due_within(state, ahead):
        return token
    if not state.get("refresh_token"):
        mark_reconnect_needed(credential, "the access token expired and there is no refresh token")
    client = WebApplicationClient(config["client_id"])
    client_secret = client_secret_getter()
    body = client.prepare_refresh_body(refresh_token=state["refresh_token"], **client_body_auth(config, client_secret))
    try:
        answer = _request_with(config, body, client_secret)
    except TokenRequestFailed as exc:
        if exc.error in ("invalid_grant", "unauthorized_client"):
            mark_reconnect_needed(credential, f"refresh refused: {exc}")
        record(None, credential, f"refresh failed: {exc}")
        raise
    new_state = _grant_state(answer, config, previous=state)
    credential_state.write(credential, new_state)
    return grant_token(new_state)


def due_within(state: dict, seconds: float, now: float | None = None) -> bool:
    """True when the connected grant `state` can be refreshed and its access token expires (or, with no
    stated expiry, is due for renewal) within `seconds`."""
    if seconds <= 0 or state.get("status") != CONNECTED or not state.get("refresh_token"):
        return False
    ends = state.get("expires_at") or state.get("renew_at")
    return ends is not None and ends <= (now or time.time()) + seconds


def mark_reconnect_needed(credential: Credential, reason: str) -> None:
    """Drop the tokens, remember why, and raise AuthorizationNeeded."""
    credential_state.write(credential, {"status": RECONNECT_NEEDED, "error": reason[:500], "since": _iso(time.time())})
    record(None, credential, f"reconnect needed: {reason}")
    logger.warning("OAuth2 credential needs reconnecting", extra={"credential_id": str(credential.pk)})
    raise AuthorizationNeeded()


def connection_status(credential: Credential) -> tuple[str, str]:
    """(status, detail) for the admin: connected / reconnect_needed / not_connected."""
    state = credential.state or {}
    config = credential.config or {}
    if state.get("status") == CONNECTED and state.get("client") != client_fingerprint(config):
        return RECONNECT_NEEDED, "the provider settings changed since the credential was connected"
    if state.get("status") == CONNECTED:
        return CONNECTED, f"connected {state.get('connected_at', '')}".strip()
    if state.get("status") == RECONNECT_NEEDED:
        return RECONNECT_NEEDED, state.get("error", "")
    return "not_connected", "never connected"


def record(ctx, credential: Credential, note: str) -> None:
    """An AuditEvent (`changed`) on the credential that says what happened to its grant."""
    event = audit.record_event(ctx, AuditAction.CHANGED, credential)
    event.object_repr = f"{credential} — {note}"[:300]
    event.save(update_fields=["object_repr"])


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
