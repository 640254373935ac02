"""Signed outgoing requests (SPEC §17): a tenant's API can verify that a request came from Switchboard.

When a connection has `sign_requests` on, every request to it — each retry and each redirect hop, every
body type — carries

    X-Switchboard-Timestamp: <unix seconds>
    X-Switchboard-Request-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>">

computed by `integrations.http.send()` over the exact bytes it sends (an empty body signs as
`"<timestamp>."`). The key is the connection's signing secret (its UTF-8 bytes), encrypted at rest and
shown once: in the response that turns signing on and in the one that rotates it. Receivers should
compare in constant time and refuse timestamps more than a few minutes old (replays); recipes in Python
and Node are in docs/integrations.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from integrations.models import Connection
from tenants import audit
from tenants.models import AuditAction
from tenants.scoping import TenantContext

TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
SIGNATURE_HEADER = "X-Switchboard-Request-Signature"
SECRET_PREFIX = "swb_sig_"
VERSION = "v1"

Signer = Callable[[bytes], dict[str, str]]


def generate_secret() -> str:
    """A new signing secret: a recognisable prefix (secret scanners) and 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex HMAC-SHA256 of "<timestamp>.<body>">` keyed with the secret's UTF-8 bytes."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def signature_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The two headers for one request whose body is exactly `body`."""
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def signer_for(connection: Connection) -> Signer | None:
    """What `http.send(signer=...)` needs for this connection, or None when it does not sign."""
    if not (connection.sign_requests and connection.signing_secret):
        return None
    secret = connection.signing_secret
    return lambda body: signature_headers(secret, body)


def rotate_secret(connection: Connection, *, ctx: TenantContext | None = None) -> str:
    """Give the connection a new signing secret (turning signing on) and return it — the only time it is shown.

    The old secret stops working at once: receivers must be updated with the new one.
    """
    connection.signing_secret = generate_secret()
    connection.sign_requests = True
    connection.save(update_fields=["signing_secret", "sign_requests", "updated_at"])
    audit.record_event(ctx, AuditAction.ROTATED, connection)
    return connection.signing_secret


def settle_secret(connection: Connection, *, was_signing: bool) -> str | None:
    """After a create or change: a fresh secret when signing was just turned on (returned once), else None.

    Turning signing off forgets the secret, so turning it on again never re-shows an old one.
    """
    if connection.sign_requests and (not was_signing or not connection.signing_secret):
        connection.signing_secret = generate_secret()
        connection.save(update_fields=["signing_secret", "updated_at"])
        return connection.signing_secret
    if not connection.sign_requests and connection.signing_secret:
        connection.signing_secret = ""
        connection.save(update_fields=["signing_secret", "updated_at"])
    return None
