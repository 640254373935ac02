"""oauth2_authorization_code: the admin's Connect dance (state + PKCE), stored grant, refresh with
rotation, reconnect-needed, tenant isolation — against a real OAuth2 server (oauthlib) on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import Client

from integrations.executor import execute
from integrations.models import ApiCallLog, Credential
from tenants.models import AuditEvent
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, client_side_log

RECONNECT = "OAuth2 authorization needed: reconnect the credential in the admin"


@pytest.fixture
def ac_credential(make_credential, oauth_provider):
    def make(owner=None, **config):
        return make_credential(
            "oauth2_authorization_code",
            owner=owner,
            config=oauth_provider.authorization_code_config(scope="read write", **config),
            secrets={"client_secret": CLIENT_SECRET},
        )

    return make


@pytest.fixture
def admin_client(client, make_staff_user, tenant):
    client.force_login(make_staff_user("oauth-admin", tenant, role="admin"))
    return client


@pytest.fixture
def api(make_endpoint, make_connection, oauth_provider):
    def make(credential, path="/api/me"):
        connection = make_connection(credential=credential, base_url=oauth_provider.url(""), owner=credential.tenant)
        return make_endpoint(connection, path=path)

    return make


def raw_cache_values() -> list[str]:
    """What the shared cache holds, as stored (the database cache's table, or Redis)."""
    from django.core.cache import caches
    from django.core.cache.backends.db import DatabaseCache

    cache = caches["default"]
    if isinstance(cache, DatabaseCache):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT value FROM {connection.ops.quote_name(cache._table)}")
            values = [str(row[0]) for row in cursor.fetchall()]
    else:
        client = cache._cache.get_client()
        values = [repr(client.get(key)) for key in client.scan_iter()]
    assert values
    return values


def start(client, credential) -> str:
    response = client.post(f"/admin/integrations/credential/{credential.pk}/oauth2/connect/")
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def approve(authorize_url: str, decision: str = "approve") -> str:
    """What the admin's browser does at the provider: approve, and get sent back to our callback."""
    split = urlsplit(authorize_url)
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    answer = requests.post(
        f"{split.scheme}://{split.netloc}/authorize?{split.query}",
        data={"decision": decision},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def follow(client, callback_url: str):
    split = urlsplit(callback_url)
    return client.get(f"{split.path}?{split.query}")


def connect(client, credential) -> None:
    response = follow(client, approve(start(client, credential)))
    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.state["status"] == "connected"


def test_connect_sends_state_and_pkce_s256_and_stores_the_grant(admin_client, ac_credential, api, oauth_provider):
    credential = ac_credential()

    authorize_url = start(admin_client, credential)
    query = parse_qs(urlsplit(authorize_url).query)
    callback = approve(authorize_url)
    done = follow(admin_client, callback)

    assert authorize_url.startswith(oauth_provider.authorize_url + "?")
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"] == ["read write"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 40
    assert query["redirect_uri"] == ["http://testserver/admin/integrations/credential/oauth2/callback/"]
    exchange = oauth_provider.token_requests[0]
    assert exchange["grant_type"] == "authorization_code"
    digest = hashlib.sha256(exchange["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == query["code_challenge"][0]
    assert done.status_code == 302
    assert done["Location"] == f"/admin/integrations/credential/{credential.pk}/change/"
    credential.refresh_from_db()
    assert credential.state["status"] == "connected"
    assert credential.state["access_token"] in oauth_provider.access_tokens
    assert credential.state["refresh_token"] in oauth_provider.refresh_tokens
    result = execute(api(credential))
    assert result.status == "success", result.error
    assert result.body["scopes"] == ["read", "write"]
    assert oauth_provider.token_count() == 1
    assert AuditEvent.objects.filter(object_id=str(credential.pk), object_repr__endswith="connected").exists()


def test_tokens_are_encrypted_and_never_shown(admin_client, ac_credential, api, oauth_provider, owner_client, caplog):
    credential = ac_credential()
    with caplog.at_level("DEBUG"):
        connect(admin_client, credential)
        endpoint = api(credential)
        oauth_provider.http.route("GET", "/api/echo", lambda r: (200, {}, {"auth": r.header("Authorization")}))
        results = [execute(endpoint).to_dict(), execute(api(credential, "/api/echo")).to_dict()]
        test = owner_client.post(f"/api/v1/connections/{endpoint.connection_id}/test")
    pages = [
        admin_client.get(f"/admin/integrations/credential/{credential.pk}/change/").content.decode(),
        admin_client.get("/admin/integrations/credential/").content.decode(),
        owner_client.get(f"/api/v1/credentials/{credential.pk}").content.decode(),
        test.content.decode(),
        str(results),
        client_side_log(caplog),
        str(list(ApiCallLog.objects.values())),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT state, secrets FROM integrations_credential")
        raw = [bytes(column).decode("latin-1") for row in cursor.fetchall() for column in row]
        cursor.execute("SELECT session_data FROM django_session")
        raw += [str(SessionStore().decode(row[0])) for row in cursor.fetchall()]

    raw += raw_cache_values()
    secrets = [*oauth_provider.issued_tokens(), CLIENT_SECRET, oauth_provider.token_requests[0]["code_verifier"]]
    assert len(secrets) == 4
    for secret in secrets:
        for where in pages + raw:
            assert secret not in where
    assert test.json()["auth"]["token"].startswith("••••")
    assert test.json()["auth"]["token_type"] == "Bearer"
    assert test.json()["ok"] is True
    assert owner_client.get(f"/api/v1/credentials/{credential.pk}").json()["authorization"]["status"] == "connected"


def test_the_access_token_is_refreshed_ahead_of_expiry_and_the_refresh_token_rotates(
    admin_client,
    ac_credential,
    api,
    oauth_provider,
):
    oauth_provider.expires_in = 2
    credential = ac_credential()
    connect(admin_client, credential)
    first_refresh = credential.state["refresh_token"]
    endpoint = api(credential)

    before = [execute(endpoint).status for _ in range(2)]
    time.sleep(1.9)
    after = [execute(endpoint).status for _ in range(2)]

    credential.refresh_from_db()
    assert before + after == ["success"] * 4
    assert oauth_provider.token_count("refresh_token") == 1
    assert oauth_provider.token_requests[-1]["refresh_token"] == first_refresh
    assert credential.state["refresh_token"] != first_refresh
    assert oauth_provider.refresh_tokens[first_refresh].active is False
    assert oauth_provider.refresh_tokens[credential.state["refresh_token"]].active is True


def test_a_401_refreshes_once_and_retries(admin_client, ac_credential, api, oauth_provider):
    credential = ac_credential()
    connect(admin_client, credential)
    endpoint = api(credential)
    assert execute(endpoint).status == "success"
    oauth_provider.revoke_access_tokens()

    result = execute(endpoint)

    assert result.status == "success", result.error
    assert result.attempts == 2
    assert oauth_provider.token_count("refresh_token") == 1


def test_a_body_condition_refreshes_too(admin_client, ac_credential, api, oauth_provider):
    credential = ac_credential(expired_token_condition="error.code == 'TOKEN_EXPIRED'")
    connect(admin_client, credential)
    endpoint = api(credential, "/soft/me")
    oauth_provider.revoke_access_tokens()

    result = execute(endpoint)

    assert result.body == {"ok": True, "client_id": CLIENT_ID}
    assert oauth_provider.token_count("refresh_token") == 1


def test_50_concurrent_calls_with_an_expired_token_refresh_once(
    transactional_db,
    tenant,
    make_staff_user,
    client,
    ac_credential,
    api,
    oauth_provider,
):
    from tests.support.concurrency import run_threads

    client.force_login(make_staff_user("oauth-admin", tenant, role="admin"))
    oauth_provider.expires_in = 1
    credential = ac_credential()
    connect(client, credential)
    endpoint = api(credential)
    time.sleep(1.05)
    oauth_provider.expires_in = 3600
    oauth_provider.token_delay = 0.3

    statuses = run_threads(50, lambda: execute(endpoint, log=False).status)

    assert statuses == ["success"] * 50
    assert oauth_provider.token_count("refresh_token") == 1
    credential.refresh_from_db()
    assert oauth_provider.refresh_tokens[credential.state["refresh_token"]].active is True


def test_invalid_grant_puts_the_credential_in_reconnect_needed(admin_client, ac_credential, api, oauth_provider):
    credential = ac_credential()
    connect(admin_client, credential)
    endpoint = api(credential)
    oauth_provider.revoke_access_tokens()
    oauth_provider.revoke_refresh_tokens()

    result = execute(endpoint)
    again = execute(endpoint)

    assert result.status == "failure"
    assert result.error == RECONNECT
    assert again.error == RECONNECT
    assert oauth_provider.token_count("refresh_token") == 1
    credential.refresh_from_db()
    assert credential.state["status"] == "reconnect_needed"
    assert "access_token" not in credential.state
    assert "invalid_grant" in credential.state["error"]
    listing = admin_client.get("/admin/integrations/credential/").content.decode()
    page = admin_client.get(f"/admin/integrations/credential/{credential.pk}/change/").content.decode()
    assert "Reconnect needed" in listing
    assert RECONNECT in page
    assert AuditEvent.objects.filter(object_id=str(credential.pk), object_repr__contains="reconnect needed").exists()

    connect(admin_client, credential)
    assert execute(endpoint).status == "success"


def test_a_credential_never_connected_asks_for_authorization(ac_credential, api, oauth_provider, owner_client):
    credential = ac_credential()
    endpoint = api(credential)

    result = execute(endpoint)
    test = owner_client.post(f"/api/v1/connections/{endpoint.connection_id}/test").json()

    assert result.status == "failure"
    assert result.error == RECONNECT
    assert test["ok"] is False
    assert test["error"] == RECONNECT
    assert oauth_provider.token_count() == 0


def test_the_admin_shows_the_redirect_uri_and_a_connect_button(admin_client, ac_credential):
    credential = ac_credential()

    page = admin_client.get(f"/admin/integrations/credential/{credential.pk}/change/").content.decode()

    assert "http://testserver/admin/integrations/credential/oauth2/callback/" in page
    assert 'id="oauth2-connect"' in page
    assert "Not connected" in page


def test_a_denied_consent_leaves_the_credential_unconnected(admin_client, ac_credential, oauth_provider):
    credential = ac_credential()

    response = follow(admin_client, approve(start(admin_client, credential), decision="deny"))

    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.state == {}
    messages = [m.message for m in response.wsgi_request._messages]
    assert messages == ["The provider did not authorize the connection: access_denied"]


def test_a_state_is_single_use(admin_client, ac_credential, oauth_provider):
    credential = ac_credential()
    callback = approve(start(admin_client, credential))

    first = follow(admin_client, callback)
    replay = follow(admin_client, callback)

    assert first.status_code == 302
    assert replay.status_code == 400
    assert "unknown or has expired" in replay.content.decode()
    assert oauth_provider.token_count() == 1


def test_an_expired_state_is_refused(admin_client, ac_credential, oauth_provider):
    credential = ac_credential()
    callback = approve(start(admin_client, credential))
    session = admin_client.session
    for entry in session["oauth2_pending"].values():
        entry["expires"] = time.time() - 1
    session.save()

    response = follow(admin_client, callback)

    assert response.status_code == 400
    assert oauth_provider.token_count() == 0


def test_a_wrong_state_is_refused(admin_client, ac_credential, oauth_provider):
    credential = ac_credential()
    callback = approve(start(admin_client, credential))

    response = follow(admin_client, callback.replace("state=", "state=x"))

    assert response.status_code == 400
    assert oauth_provider.token_count() == 0


def test_another_tenants_admin_cannot_connect_or_complete(
    admin_client,
    make_staff_user,
    other_tenant,
    ac_credential,
    oauth_provider,
):
    credential = ac_credential()
    intruder = Client()
    intruder.force_login(make_staff_user("intruder", other_tenant, role="owner"))

    connect_attempt = intruder.post(f"/admin/integrations/credential/{credential.pk}/oauth2/connect/")
    callback = approve(start(admin_client, credential))
    stolen = follow(intruder, callback)

    assert connect_attempt.status_code == 404
    assert stolen.status_code == 400
    credential.refresh_from_db()
    assert credential.state == {}
    assert follow(admin_client, callback).status_code == 302  # the rightful admin can still finish
    credential.refresh_from_db()
    assert credential.state["status"] == "connected"


def test_a_pending_state_for_a_credential_the_user_lost_access_to_is_404(
    admin_client, ac_credential, oauth_provider, tenant
):
    from tenants.models import Membership

    credential = ac_credential()
    callback = approve(start(admin_client, credential))
    Membership.objects.filter(tenant=tenant).update(role="viewer")

    response = follow(admin_client, callback)

    assert response.status_code == 404
    credential.refresh_from_db()
    assert credential.state == {}


def test_a_state_cannot_complete_another_credential(admin_client, ac_credential, oauth_provider):
    from integrations import auth
    from integrations.auth import oauth

    first, second = ac_credential(), ac_credential()
    callback = approve(start(admin_client, first))
    pending = oauth.take_pending(admin_client.session, parse_qs(urlsplit(callback).query)["state"][0])

    with pytest.raises(oauth.ConnectFailed, match="another credential"):
        auth.for_credential(second).complete(pending, parse_qs(urlsplit(callback).query)["code"][0])
    assert Credential.objects.get(pk=second.pk).state == {}


def test_editing_the_credential_keeps_the_grant(admin_client, ac_credential, owner_client):
    credential = ac_credential()
    credential.state = {"status": "connected", "refresh_token": "rt-old"}
    stale = Credential.objects.get(pk=credential.pk)
    Credential.objects.filter(pk=credential.pk).update(state={"status": "connected", "refresh_token": "rt-new"})

    response = owner_client.patch(f"/api/v1/credentials/{credential.pk}", {"description": "edited"}, format="json")
    stale.description = "edited in the admin"
    from integrations.auth import credential_state

    credential_state.save_settings(stale)

    assert response.status_code == 200
    assert Credential.objects.get(pk=credential.pk).state["refresh_token"] == "rt-new"


def test_connect_and_callback_of_other_types_are_404(admin_client, make_credential):
    bearer = make_credential("bearer", secrets={"token": "t" * 20})

    assert admin_client.post(f"/admin/integrations/credential/{bearer.pk}/oauth2/connect/").status_code == 404


def test_another_tenants_connection_test_is_404(other_client, ac_credential, api):
    endpoint = api(ac_credential())

    assert other_client.post(f"/api/v1/connections/{endpoint.connection_id}/test").status_code == 404


def test_changing_the_type_drops_the_grant(ac_credential, owner_client):
    credential = ac_credential()
    Credential.objects.filter(pk=credential.pk).update(state={"status": "connected", "refresh_token": "rt"})

    response = owner_client.patch(
        f"/api/v1/credentials/{credential.pk}",
        {"type": "bearer", "config": {}, "secrets": {"token": "t" * 20}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert Credential.objects.get(pk=credential.pk).state == {}
