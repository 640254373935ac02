"""The periodic OAuth2 token refresh job (SPEC §11): authorization-code grants are renewed ahead of
expiry through the executor's single-flight lock — against a real OAuth2 server on 127.0.0.1."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings

from config.celery import app
from integrations import auth
from integrations.auth import oauth
from integrations.auth.token_refresh import refresh_credential, refresh_due_grants
from integrations.executor import execute
from integrations.models import Credential
from integrations.tasks import refresh_oauth_tokens
from tenants.models import AuditEvent
from tests.support.concurrency import run_threads
from tests.support.oauth_server import CLIENT_SECRET, client_side_log
from tests.support.worker import wait_for

RECONNECT = "OAuth2 authorization needed: reconnect the credential in the admin"
NEAR_EXPIRY = 300  # seconds: inside the default 10-minute window, yet fresh for a call (renewed at 270 s)


@pytest.fixture
def connected(make_credential, make_connection, make_endpoint, oauth_provider):
    """`connected(expires_in)` → (credential, endpoint): a grant connected through the real consent
    dance, whose first access token lives `expires_in` seconds; later tokens live an hour."""

    def make(expires_in: int):
        credential = make_credential(
            "oauth2_authorization_code",
            config=oauth_provider.authorization_code_config(),
            secrets={"client_secret": CLIENT_SECRET},
        )
        oauth_provider.expires_in = expires_in
        _connect(credential, oauth_provider)
        oauth_provider.expires_in = 3600
        connection = make_connection(credential=credential, base_url=oauth_provider.url(""))
        return credential, make_endpoint(connection, path="/api/seen")

    return make


def _connect(credential, provider) -> None:
    provider.auto_approve = True
    session: dict = {}
    authenticator = auth.for_credential(credential)
    authorize_url = authenticator.authorization_url(session, "http://127.0.0.1:9/callback/")
    callback = requests.get(authorize_url, allow_redirects=False, timeout=5).headers["Location"]
    query = parse_qs(urlsplit(callback).query)
    authenticator.complete(oauth.take_pending(session, query["state"][0]), query["code"][0])
    credential.refresh_from_db()
    assert credential.state["status"] == oauth.CONNECTED


@pytest.fixture
def seen_tokens(oauth_provider) -> list[str]:
    """The bearer tokens `GET /api/seen` received (it answers 200 to any)."""
    seen: list[str] = []

    def handler(request):
        seen.append((request.header("Authorization") or "").removeprefix("Bearer "))
        return 200, {}, {"ok": True}

    oauth_provider.http.route("GET", "/api/seen", handler)
    return seen


def test_a_grant_near_expiry_is_refreshed_once_by_two_concurrent_runs(
    transactional_db, connected, oauth_provider, seen_tokens, caplog
):
    # given a grant whose access token expires in 5 minutes, and a slow token endpoint
    credential, endpoint = connected(NEAR_EXPIRY)
    old_access, old_refresh = credential.state["access_token"], credential.state["refresh_token"]
    seen_due_earlier = Credential.objects.get(pk=credential.pk)
    oauth_provider.token_delay = 0.3

    # when the job runs twice at the same time, then once more, and a run that found the grant due
    # before it was refreshed reaches it only now
    with caplog.at_level("DEBUG"):
        reports = run_threads(2, refresh_due_grants)
        again = refresh_due_grants()
        late = refresh_credential(seen_due_earlier, NEAR_EXPIRY * 2)

    # then exactly one refresh was made, with the refresh token rotated
    assert oauth_provider.token_count("refresh_token") == 1
    assert sorted(r.refreshed for r in reports) == [0, 1]
    assert [(r.reconnect_needed, r.failed) for r in reports] == [(0, 0), (0, 0)]
    assert again.as_dict() == {"due": 0, "refreshed": 0, "reconnect_needed": 0, "failed": 0}
    assert late == "unchanged"
    credential.refresh_from_db()
    state = credential.state
    assert state["status"] == oauth.CONNECTED
    assert state["access_token"] != old_access
    assert state["refresh_token"] != old_refresh
    assert oauth_provider.refresh_tokens[old_refresh].active is False
    assert oauth_provider.refresh_tokens[state["refresh_token"]].active is True
    assert 3500 < state["expires_at"] - time.time() <= 3600
    for token in oauth_provider.issued_tokens():
        assert token not in client_side_log(caplog)

    # and the next call sends the new token without refreshing again
    result = execute(endpoint)
    assert result.status == "success", result.error
    assert seen_tokens == [state["access_token"]]
    assert oauth_provider.token_count("refresh_token") == 1


def test_a_fresh_grant_is_left_alone(connected, oauth_provider):
    # given a grant whose access token lives another hour
    credential, _ = connected(3600)
    before = dict(credential.state)

    # when the job runs
    report = refresh_due_grants()

    # then nothing is sent and the grant is unchanged
    assert report.as_dict() == {"due": 0, "refreshed": 0, "reconnect_needed": 0, "failed": 0}
    assert oauth_provider.token_count("refresh_token") == 0
    credential.refresh_from_db()
    assert credential.state == before


def test_a_revoked_refresh_token_moves_the_credential_to_reconnect_needed(connected, oauth_provider):
    # given a grant near expiry whose refresh token the provider revoked
    credential, endpoint = connected(NEAR_EXPIRY)
    oauth_provider.revoke_refresh_tokens()

    # when the job runs, twice
    report = refresh_due_grants()
    again = refresh_due_grants()

    # then the credential needs reconnecting, once, with its audit event, and calls say so
    assert (report.due, report.refreshed, report.reconnect_needed) == (1, 0, 1)
    assert again.due == 0
    assert oauth_provider.token_count("refresh_token") == 1
    credential.refresh_from_db()
    assert credential.state["status"] == oauth.RECONNECT_NEEDED
    assert "invalid_grant" in credential.state["error"]
    assert "access_token" not in credential.state
    events = AuditEvent.objects.filter(object_id=str(credential.pk), object_repr__contains="reconnect needed")
    assert events.count() == 1
    assert events.get().actor == "system"
    result = execute(endpoint)
    assert (result.status, result.error) == ("failure", RECONNECT)


def test_an_unreachable_provider_is_a_failure_and_the_grant_is_kept(connected, oauth_provider):
    # given a grant near expiry, and a token endpoint that answers 503
    credential, _ = connected(NEAR_EXPIRY)
    before = dict(credential.state)
    oauth_provider.http.route("POST", "/token", lambda r: (503, {}, {"error": "temporarily_unavailable"}))

    # when the job runs
    report = refresh_due_grants()

    # then it counts a failure, and the grant stays connected for the next run (or a call) to renew
    assert (report.due, report.refreshed, report.failed) == (1, 0, 1)
    credential.refresh_from_db()
    assert credential.state == before


def test_a_grant_for_changed_provider_settings_is_not_refreshed(connected, oauth_provider):
    # given a grant near expiry whose credential now names another client
    credential, _ = connected(NEAR_EXPIRY)
    credential.config = {**credential.config, "client_id": "another-client"}
    credential.save()

    # when the job runs
    report = refresh_due_grants()

    # then nothing is sent: the credential needs reconnecting anyway
    assert report.due == 0
    assert oauth_provider.token_count("refresh_token") == 0


def test_beat_schedules_the_job_twice_per_window_and_drops_stale_runs(transactional_db):
    # (transactional: the scheduler closes database connections as `celery beat` does)
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    # when django-celery-beat's scheduler starts
    DatabaseScheduler(app=app)

    # then the job runs every 5 minutes (half the default 10-minute window), a queued run expires
    # after as long, and it is acked on start (beat's next run is its retry)
    entry = PeriodicTask.objects.get(name="refresh-oauth-tokens")
    assert settings.OAUTH_REFRESH_AHEAD_MINUTES == 10
    assert (entry.task, entry.interval.every, entry.interval.period, entry.expire_seconds, entry.enabled) == (
        "integrations.refresh_oauth_tokens",
        300,
        "seconds",
        300,
        True,
    )
    assert refresh_oauth_tokens.acks_late is False


def test_the_job_runs_through_a_real_worker(celery_worker_process, connected, oauth_provider):
    # given a grant near expiry and a real worker
    credential, _ = connected(NEAR_EXPIRY)
    old_refresh = credential.state["refresh_token"]

    # when the task is sent through the broker
    refresh_oauth_tokens.delay()

    # then the worker refreshes the grant
    def refreshed():
        credential.refresh_from_db()
        return credential.state.get("refresh_token") not in (None, old_refresh)

    wait_for(refreshed, timeout=60)
    assert oauth_provider.token_count("refresh_token") == 1
    assert credential.state["status"] == oauth.CONNECTED
    assert "Task integrations.refresh_oauth_tokens[" in celery_worker_process.log()
