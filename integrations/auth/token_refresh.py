"""The periodic OAuth2 token refresh (SPEC §11): keeps `oauth2_authorization_code` grants alive.

A call refreshes its grant's access token when it needs one, so a grant nobody uses is never
refreshed, and the provider may expire its refresh token meanwhile (many do after days or weeks of
idleness). `refresh_due_grants()` — run by beat through `integrations.refresh_oauth_tokens` — renews
every connected grant whose access token expires within `OAUTH_REFRESH_AHEAD_MINUTES`, through the
same single-flight lock and `oauth.refresh_grant()` a call uses: one refresh at a time across
processes, a rotated refresh token kept, `invalid_grant` → "reconnect needed" with its audit event.
Whether a grant is due is decided again under the lock on the grant as stored, so the job is
idempotent: running it twice, or twice at once, refreshes each grant once. It never logs a token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from django.conf import settings

from integrations import auth
from integrations.auth import oauth
from integrations.auth.base import AuthorizationNeeded, CredentialUnavailable
from integrations.auth.oauth2_authorization_code import AuthorizationCodeAuth
from integrations.models import Credential

logger = logging.getLogger(__name__)

AUTHORIZATION_CODE = "oauth2_authorization_code"
BATCH = 200


@dataclass
class RefreshReport:
    """What one run did: grants due, refreshed by this run, now needing a reconnect, failed otherwise."""

    due: int = 0
    refreshed: int = 0
    reconnect_needed: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def refresh_due_grants(ahead_seconds: float | None = None) -> RefreshReport:
    """Refresh every connected authorization-code grant whose access token expires within `ahead_seconds`
    (default `OAUTH_REFRESH_AHEAD_MINUTES`), in every tenant. Never raises for one grant's failure."""
    ahead = settings.OAUTH_REFRESH_AHEAD_MINUTES * 60.0 if ahead_seconds is None else ahead_seconds
    report = RefreshReport()
    for credential in _authorization_code_credentials():
        if not _due(credential, ahead):
            continue
        report.due += 1
        outcome = refresh_credential(credential, ahead)
        if outcome != "unchanged":
            setattr(report, outcome, getattr(report, outcome) + 1)
    logger.log(logging.INFO if report.due else logging.DEBUG, "OAuth2 token refresh run", extra=report.as_dict())
    return report


def refresh_credential(credential: Credential, ahead_seconds: float) -> str:
    """Refresh one grant if due: "refreshed", "unchanged" (another run or a call did it, or it is not
    due any more), "reconnect_needed" or "failed" (the provider refused or was unreachable)."""
    authenticator = auth.for_credential(credential)
    if not isinstance(authenticator, AuthorizationCodeAuth):
        return "unchanged"  # only authorization-code grants are refreshed ahead
    try:
        return "refreshed" if authenticator.refresh_ahead(ahead_seconds) else "unchanged"
    except AuthorizationNeeded:
        return "reconnect_needed"
    except CredentialUnavailable as exc:
        # The message is the provider's error with secrets scrubbed (see oauth.parse_token_response).
        logger.warning("OAuth2 token refresh failed", extra={"credential_id": str(credential.pk), "error": str(exc)})
        return "failed"


def _authorization_code_credentials() -> Iterator[Credential]:
    # Ids first, then rows in batches: the loop writes the grants of the rows it reads, which an open
    # cursor over the same table does not tolerate everywhere (SQLite). The grant is encrypted, so
    # whether it is due is decided in Python, not filtered in SQL.
    pks = list(Credential.objects.filter(type=AUTHORIZATION_CODE).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), BATCH):
        yield from Credential.objects.filter(pk__in=pks[start : start + BATCH]).order_by("pk")


def _due(credential: Credential, ahead: float) -> bool:
    state = credential.state or {}
    # A grant made for other provider settings is not refreshed: it needs reconnecting, which a call
    # reports; refreshing it would use a token that no longer fits.
    return oauth.due_within(state, ahead) and state.get("client") == oauth.client_fingerprint(credential.config or {})
