"""API authentication: `Authorization: Bearer swb_…` keys, and the admin's session for /api/v1/."""

from __future__ import annotations

import copy
import ipaddress
import threading
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import HTTP_HEADER_ENCODING, authentication, exceptions

from tenants import two_factor
from tenants.models import API_KEY_PREFIX, ApiKey, Tenant
from tenants.scoping import TenantContext, role_for_user, tenants_for_user
from tenants.secrets import hash_token

INVALID_KEY_MESSAGE = "Invalid or inactive API key"
TENANT_HEADER = "HTTP_X_SWITCHBOARD_TENANT"


class ApiKeyPrincipal:
    """`request.user` for a request made with an API key."""

    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False
    pk = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}…"

    def get_username(self) -> str:
        return str(self)


def client_ip(request) -> str | None:
    """The client's address: the socket's, or behind NUM_PROXIES proxies the one the outermost saw."""
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if settings.NUM_PROXIES and forwarded:
        candidate = forwarded[-min(settings.NUM_PROXIES, len(forwarded))]
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            pass  # a forged or garbled header: fall back to the socket's address
    return request.META.get("REMOTE_ADDR")


# Active keys this process authenticated recently: key hash → (valid until, key with its tenant).
# Entries live API_KEY_CACHE_SECONDS (≤ 1 s by default), so a revocation, an expiry or a deletion made
# by any process takes effect everywhere within that time without a database read per request;
# revoke_api_key also forgets the key here at once. Unknown keys are never cached.
_known_keys: dict[str, tuple[float, ApiKey]] = {}
_known_keys_lock = threading.Lock()
MAX_KNOWN_KEYS = 10_000


def _remembered(key_hash: str) -> ApiKey | None:
    with _known_keys_lock:
        entry = _known_keys.get(key_hash)
    if entry is None or entry[0] <= time.monotonic():
        return None
    # A copy per request: views may change the key or its tenant (last_used_at, webhook secret).
    key = copy.copy(entry[1])
    key.tenant = copy.copy(entry[1].tenant)
    return key


def _remember(key_hash: str, key: ApiKey) -> None:
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl <= 0:
        return
    with _known_keys_lock:
        if len(_known_keys) >= MAX_KNOWN_KEYS:
            _known_keys.clear()  # many distinct keys in one second: start over rather than grow
        _known_keys[key_hash] = (time.monotonic() + ttl, copy.copy(key))


def forget_api_key(key_hash: str | None = None) -> None:
    """Drop one remembered key (by its hash), or all of them, from this process's memory."""
    with _known_keys_lock:
        if key_hash is None:
            _known_keys.clear()
        else:
            _known_keys.pop(key_hash, None)


def authenticate_api_key(raw_key: str) -> ApiKey | None:
    """The active key for `raw_key`, with its tenant, or None. Touches last_used_at at most once a minute."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    key_hash = hash_token(raw_key)
    key = _remembered(key_hash)
    if key is None or not key.is_active:
        key = ApiKey.objects.active().select_related("tenant").filter(key_hash=key_hash).first()
        if key is None:
            return None
        _remember(key_hash, key)
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if key.last_used_at is None or key.last_used_at <= stale_before:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        _remember(key_hash, key)
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        # META rather than DRF's get_authorization_header: the same header (as bytes, ISO-8859-1, the
        # way WSGI carries it) without building request.headers from every META name on each request.
        value = request.META.get("HTTP_AUTHORIZATION", b"")
        header = (value.encode(HTTP_HEADER_ENCODING) if isinstance(value, str) else value).split()
        if not header:
            return None
        if header[0].lower() != self.keyword.lower().encode() or len(header) != 2:
            raise exceptions.AuthenticationFailed(INVALID_KEY_MESSAGE)
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID_KEY_MESSAGE) from None
        key = authenticate_api_key(raw_key)
        if key is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY_MESSAGE)
        ctx = TenantContext(tenant=key.tenant, role=key.role, api_key=key, ip_address=client_ip(request))
        return ApiKeyPrincipal(key), ctx

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="api"'


def _session_tenant(request, user) -> Tenant | None:
    tenants = tenants_for_user(user)
    wanted = request.META.get(TENANT_HEADER)
    if wanted:
        by_slug = tenants.filter(slug=wanted).first()
        if by_slug is not None:
            return by_slug
        try:
            return tenants.filter(pk=uuid.UUID(wanted)).first()
        except ValueError:
            return None
    candidates = list(tenants[:2])
    return candidates[0] if len(candidates) == 1 else None


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """The admin's logged-in session; the tenant is the user's only one, or chosen by X-Switchboard-Tenant."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if not two_factor.is_satisfied(user):
            return None  # a session still waiting for its second factor is not signed in
        tenant = _session_tenant(request, user)
        role = role_for_user(user, tenant) if tenant else None
        return user, TenantContext(tenant=tenant, role=role, user=user, ip_address=client_ip(request))
