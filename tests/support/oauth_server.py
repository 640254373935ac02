"""A real OAuth2 authorization server for tests, built on oauthlib's server classes and served by a
`tests.support.http_servers.HttpServer` on 127.0.0.1.

Grants: client credentials (client auth by Basic header or body), authorization code with PKCE
(required, S256 or plain as oauthlib checks it) and refresh token, with refresh-token rotation (the
old refresh token stops working once a new one is issued). Routes:

- ``POST /token`` — the token endpoint; every request is counted (``provider.token_requests``, each a
  dict of the form fields plus ``auth``: ``basic`` or ``body``); ``provider.token_delay`` (seconds)
  slows it down to widen races.
- ``GET /authorize`` — the consent page with an "Approve" button (``#approve``) and a "Deny" one;
  with ``provider.auto_approve`` it redirects back at once.
- ``POST /authorize`` — the decision: a redirect to the client's redirect URI with ``code`` and
  ``state`` (or ``error=access_denied``).
- ``GET /api/...`` — a protected resource: 200 ``{"ok": true, "client_id", "scopes"}`` with a valid
  access token, else 401 ``{"error": "invalid_token"}``; ``GET /soft/...`` answers 200
  ``{"error": {"code": "TOKEN_EXPIRED"}}`` instead of 401 (an API that signals expiry in its body).

``provider.expires_in`` sets the lifetime of new access tokens; ``provider.revoke_access_tokens()``
makes the API reject every token issued so far; ``provider.revoke_refresh_tokens()`` makes refresh
answer ``invalid_grant``.
"""

from __future__ import annotations

import base64
import html
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode

import pytest
from oauthlib.common import generate_token
from oauthlib.oauth2 import RequestValidator, Server

from tests.support.http_servers import HttpServer, RecordedRequest

CLIENT_ID = "switchboard-test-client"
CLIENT_SECRET = "cs-test-5f1e2d3c4b5a69788796a5b4"
ISSUER = "https://oauth.test"  # oauthlib refuses plain http URIs; the real address is loopback


@dataclass
class _Client:
    client_id: str


@dataclass
class _Grant:
    client_id: str
    scopes: list[str]
    expires_at: float = 0.0
    active: bool = True
    extra: dict = field(default_factory=dict)


class _Validator(RequestValidator):
    def __init__(self, provider: OAuthProvider) -> None:
        self.p = provider

    # clients
    def client_authentication_required(self, request, *args, **kwargs):
        return True

    def authenticate_client(self, request, *args, **kwargs):
        client_id, secret, method = None, None, None
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            decoded = base64.b64decode(header[6:]).decode()
            raw_id, _, raw_secret = decoded.partition(":")
            client_id, secret, method = unquote(raw_id), unquote(raw_secret), "basic"
        elif request.client_secret:
            client_id, secret, method = request.client_id, request.client_secret, "body"
        request.auth_method = method
        if client_id and self.p.clients.get(client_id) == secret:
            request.client = _Client(client_id)
            request.client_id = client_id
            return True
        return False

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        return False

    def validate_client_id(self, client_id, request, *args, **kwargs):
        return client_id in self.p.clients

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        return grant_type in ("client_credentials", "authorization_code", "refresh_token")

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        return all(scope in self.p.known_scopes for scope in scopes)

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        return ["read"]

    # authorization code
    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        # Django's test client calls itself "testserver"; the live server and browsers use loopback.
        return redirect_uri.startswith(("http://127.0.0.1:", "http://localhost:", "http://testserver/"))

    def get_default_redirect_uri(self, client_id, request, *args, **kwargs):
        return None

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        return response_type == "code"

    def is_pkce_required(self, client_id, request):
        return True

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        with self.p.lock:
            self.p.codes[code["code"]] = _Grant(
                client_id,
                list(request.scopes),
                expires_at=time.time() + 60,
                extra={
                    "redirect_uri": request.redirect_uri,
                    "challenge": request.code_challenge,
                    "method": request.code_challenge_method,
                },
            )

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        grant = self.p.codes.get(code)
        if grant is None or not grant.active or grant.client_id != client_id or grant.expires_at < time.time():
            return False
        request.scopes = grant.scopes
        request.user = "test-user"
        return True

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        grant = self.p.codes.get(code)
        return grant is not None and grant.extra["redirect_uri"] == redirect_uri

    def get_code_challenge(self, code, request):
        grant = self.p.codes.get(code)
        return grant.extra["challenge"] if grant else None

    def get_code_challenge_method(self, code, request):
        grant = self.p.codes.get(code)
        return grant.extra["method"] if grant else None

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        with self.p.lock:
            self.p.codes[code].active = False

    # refresh tokens
    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        grant = self.p.refresh_tokens.get(refresh_token)
        if grant is None or not grant.active or grant.client_id != client.client_id:
            return False
        request.user = "test-user"
        return True

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        return self.p.refresh_tokens[refresh_token].scopes

    def rotate_refresh_token(self, request):
        return self.p.rotate_refresh_tokens

    # tokens
    def save_bearer_token(self, token, request, *args, **kwargs):
        scopes = token.get("scope", "").split() or list(request.scopes or [])
        client_id = request.client.client_id
        with self.p.lock:
            self.p.access_tokens[token["access_token"]] = _Grant(
                client_id, scopes, expires_at=time.time() + int(token.get("expires_in", 3600))
            )
            if token.get("refresh_token"):
                self.p.refresh_tokens[token["refresh_token"]] = _Grant(client_id, scopes)
                old = getattr(request, "refresh_token", None)
                if old and old != token["refresh_token"] and old in self.p.refresh_tokens:
                    self.p.refresh_tokens[old].active = False  # rotation: the old one is spent


class OAuthProvider:
    def __init__(self, http_server: HttpServer) -> None:
        self.http = http_server
        self.clients = {CLIENT_ID: CLIENT_SECRET}
        self.known_scopes = {"read", "write", "admin"}
        self.codes: dict[str, _Grant] = {}
        self.access_tokens: dict[str, _Grant] = {}
        self.refresh_tokens: dict[str, _Grant] = {}
        self.token_requests: list[dict] = []
        self.expires_in = 3600
        self.token_delay = 0.0
        self.rotate_refresh_tokens = True
        self.auto_approve = False
        self.lock = threading.Lock()
        self.server = Server(
            _Validator(self),
            token_expires_in=lambda request: self.expires_in,
            token_generator=lambda request: generate_token(40),
        )
        http_server.route("POST", "/token", self._token)
        http_server.route("GET", "/authorize", self._authorize_page)
        http_server.route("POST", "/authorize", self._authorize_decision)
        http_server.route("GET", "/api*", self._api)
        http_server.route("GET", "/soft*", self._soft_api)

    # addresses
    @property
    def token_url(self) -> str:
        return self.http.url("/token")

    @property
    def authorize_url(self) -> str:
        return self.http.url("/authorize")

    def url(self, path: str) -> str:
        return self.http.url(path)

    def authorization_code_config(self, **extra) -> dict:
        """An `oauth2_authorization_code` credential's config for this provider (its secret: CLIENT_SECRET)."""
        return {
            "authorize_url": self.authorize_url,
            "token_url": self.token_url,
            "client_id": CLIENT_ID,
            "scope": "read",
            **extra,
        }

    # counters and controls
    def token_count(self, grant_type: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.token_requests if grant_type is None or r.get("grant_type") == grant_type)

    def revoke_access_tokens(self) -> None:
        with self.lock:
            for grant in self.access_tokens.values():
                grant.active = False

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            for grant in self.refresh_tokens.values():
                grant.active = False

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token issued so far (to prove none of them leaks anywhere)."""
        with self.lock:
            return [*self.access_tokens, *self.refresh_tokens]

    # routes
    def _token(self, request: RecordedRequest):
        fields = dict(parse_qsl(request.text, keep_blank_values=True))
        header = request.header("Authorization") or ""
        fields["auth"] = "basic" if header.startswith("Basic ") else ("body" if "client_secret" in fields else None)
        with self.lock:
            self.token_requests.append(fields)
        if self.token_delay:
            time.sleep(self.token_delay)
        headers, body, status = self.server.create_token_response(
            ISSUER + request.raw_path, http_method="POST", body=request.text, headers=request.headers
        )
        return status, {"Content-Type": "application/json", **_plain(headers)}, body

    def _authorize_page(self, request: RecordedRequest):
        uri = ISSUER + request.raw_path
        try:
            scopes, _ = self.server.validate_authorization_request(uri, http_method="GET", headers=request.headers)
        except Exception as exc:  # oauthlib's FatalClientError and friends: shown, never redirected
            return 400, {}, f"invalid authorization request: {exc}"
        if self.auto_approve:
            return self._decide(request.raw_path, scopes, approve=True)
        query = request.raw_path.partition("?")[2]
        page = f"""<!doctype html><html><head><title>Test provider — consent</title></head><body>
<h1>Allow {html.escape(request.query.get("client_id", ""))} to access your account?</h1>
<p id="scopes">{html.escape(" ".join(scopes))}</p>
<form method="post" action="/authorize?{html.escape(query)}">
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form></body></html>"""
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page

    def _authorize_decision(self, request: RecordedRequest):
        decision = dict(parse_qsl(request.text)).get("decision")
        scopes = request.query.get("scope", "read").split()
        return self._decide(request.raw_path, scopes, approve=decision == "approve")

    def _decide(self, raw_path: str, scopes: list[str], *, approve: bool):
        query = dict(parse_qsl(raw_path.partition("?")[2]))
        if not approve:
            location = (
                f"{query['redirect_uri']}?{urlencode({'error': 'access_denied', 'state': query.get('state', '')})}"
            )
            return 302, {"Location": location}, b""
        uri = ISSUER + raw_path
        headers, _, status = self.server.create_authorization_response(
            uri, http_method="GET", scopes=scopes, credentials={"user": "test-user"}
        )
        return status, _plain(headers), b""

    def _valid(self, request: RecordedRequest) -> _Grant | None:
        header = request.header("Authorization") or ""
        if not header.startswith("Bearer "):
            return None
        grant = self.access_tokens.get(header[7:])
        if grant is None or not grant.active or grant.expires_at < time.time():
            return None
        return grant

    def _api(self, request: RecordedRequest):
        grant = self._valid(request)
        if grant is None:
            return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, {"error": "invalid_token"}
        return 200, {}, {"ok": True, "client_id": grant.client_id, "scopes": grant.scopes, "path": request.path}

    def _soft_api(self, request: RecordedRequest):
        grant = self._valid(request)
        if grant is None:
            return 200, {}, {"error": {"code": "TOKEN_EXPIRED"}}
        return 200, {}, {"ok": True, "client_id": grant.client_id}


SERVER_LOGGERS = ("oauthlib.oauth2.rfc6749.grant_types", "oauthlib.oauth2.rfc6749.endpoints")


def client_side_log(caplog) -> str:
    """Everything logged in the test, less the test provider's own oauthlib server logging (which
    logs the tokens it issues: that is the provider's business, not ours)."""
    return "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith(SERVER_LOGGERS))


def _plain(headers) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(headers or {}).items()}


@pytest.fixture
def oauth_provider() -> Iterator[OAuthProvider]:
    """A fresh OAuth2 authorization server (and protected API) on 127.0.0.1 for one test."""
    with HttpServer() as server:
        yield OAuthProvider(server)
