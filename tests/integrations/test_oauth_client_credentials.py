"""oauth2_client_credentials against a real OAuth2 server (oauthlib) on 127.0.0.1."""

from __future__ import annotations

import base64
import time

import pytest

from integrations.executor import execute
from integrations.models import ApiCallLog
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, client_side_log


@pytest.fixture
def cc_credential(make_credential, oauth_provider):
    def make(**config):
        return make_credential(
            "oauth2_client_credentials",
            config={"token_url": oauth_provider.token_url, "client_id": CLIENT_ID, "scope": "read", **config},
            secrets={"client_secret": config.pop("secret", CLIENT_SECRET)},
        )

    return make


@pytest.fixture
def api(make_endpoint, make_connection, oauth_provider):
    def make(credential, path="/api/orders"):
        connection = make_connection(credential=credential, base_url=oauth_provider.url(""))
        return make_endpoint(connection, path=path)

    return make


def test_token_is_fetched_once_and_reused_until_it_nears_expiry(cc_credential, api, oauth_provider):
    oauth_provider.expires_in = 2  # renewed 10 % early: after 1.8 s
    endpoint = api(cc_credential())

    first = [execute(endpoint) for _ in range(3)]
    time.sleep(1.9)
    after_expiry = [execute(endpoint) for _ in range(2)]

    assert [r.status for r in first + after_expiry] == ["success"] * 5
    assert oauth_provider.token_count("client_credentials") == 2
    assert oauth_provider.http.count("/api/orders") == 5


def test_basic_client_auth_sends_scope_and_audience(cc_credential, api, oauth_provider):
    endpoint = api(cc_credential(scope="read write", audience="https://api.example"))

    result = execute(endpoint)

    assert result.status == "success", result.error
    request = oauth_provider.token_requests[0]
    assert request["auth"] == "basic"
    assert request["grant_type"] == "client_credentials"
    assert request["scope"] == "read write"
    assert request["audience"] == "https://api.example"
    assert "client_secret" not in request
    token_call = next(r for r in oauth_provider.http.requests if r.path == "/token")
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert token_call.header("Authorization") == f"Basic {expected}"
    assert result.body["scopes"] == ["read", "write"]


def test_body_client_auth(cc_credential, api, oauth_provider):
    result = execute(api(cc_credential(client_auth="body")))

    assert result.status == "success", result.error
    request = oauth_provider.token_requests[0]
    assert request["auth"] == "body"
    assert request["client_id"] == CLIENT_ID
    assert request["client_secret"] == CLIENT_SECRET


def test_a_401_invalidates_the_token_and_fetches_one_new_token(cc_credential, api, oauth_provider):
    endpoint = api(cc_credential())
    assert execute(endpoint).status == "success"
    oauth_provider.revoke_access_tokens()

    result = execute(endpoint)
    again = execute(endpoint)

    assert result.status == "success", result.error
    assert result.attempts == 2
    assert again.attempts == 1
    assert oauth_provider.token_count() == 2


def test_a_token_rejected_twice_is_an_error_after_one_refetch(cc_credential, api, oauth_provider, monkeypatch):
    endpoint = api(cc_credential())
    oauth_provider.expires_in = 3600
    monkeypatch.setattr(oauth_provider, "_valid", lambda request: None)  # the API refuses every token

    result = execute(endpoint)

    assert result.status == "error"
    assert result.status_code == 401
    assert result.attempts == 2
    assert oauth_provider.token_count() == 2


def test_a_body_condition_counts_as_an_expired_token(cc_credential, api, oauth_provider):
    credential = cc_credential(expired_token_condition="error.code == 'TOKEN_EXPIRED'")
    endpoint = api(credential, path="/soft/orders")
    assert execute(endpoint).body == {"ok": True, "client_id": CLIENT_ID}
    oauth_provider.revoke_access_tokens()

    result = execute(endpoint)

    assert result.status == "success"
    assert result.body == {"ok": True, "client_id": CLIENT_ID}
    assert result.attempts == 2
    assert oauth_provider.token_count() == 2


def test_without_the_condition_the_body_is_just_a_response(cc_credential, api, oauth_provider):
    endpoint = api(cc_credential(), path="/soft/orders")
    execute(endpoint)
    oauth_provider.revoke_access_tokens()

    result = execute(endpoint)

    assert result.body == {"error": {"code": "TOKEN_EXPIRED"}}
    assert oauth_provider.token_count() == 1


def test_a_refused_token_request_is_a_failure_with_the_providers_error(cc_credential, api, oauth_provider):
    endpoint = api(cc_credential(secret="wrong-secret-value-123"))

    result = execute(endpoint)

    assert result.status == "failure"
    assert result.error.startswith("credential could not be obtained: token request refused (HTTP 401): invalid_client")
    assert "wrong-secret-value-123" not in result.error
    assert oauth_provider.http.count("/api/orders") == 0


def test_an_unknown_scope_shows_the_providers_error(cc_credential, api, oauth_provider):
    result = execute(api(cc_credential(scope="root")))

    assert result.status == "failure"
    assert "invalid_scope" in result.error


def test_the_token_url_goes_through_the_ssrf_guard(cc_credential, api, oauth_provider, settings):
    endpoint = api(cc_credential())
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False

    result = execute(endpoint)

    assert result.status == "failure"
    assert result.error == (
        "credential could not be obtained: token request failed: destination not allowed: "
        "127.0.0.1 is a loopback address"
    )
    assert oauth_provider.token_count() == 0


def test_client_secret_from_env_reference_is_resolved_at_call_time(make_credential, api, oauth_provider, monkeypatch):
    credential = make_credential(
        "oauth2_client_credentials",
        config={"token_url": oauth_provider.token_url, "client_id": CLIENT_ID},
        secrets={"client_secret": "env:SWB_TEST_OAUTH_SECRET"},
    )
    endpoint = api(credential)

    missing = execute(endpoint)
    monkeypatch.setenv("SWB_TEST_OAUTH_SECRET", CLIENT_SECRET)
    present = execute(endpoint)

    assert missing.status == "failure"
    assert missing.error == (
        "credential could not be obtained: client_secret: environment variable SWB_TEST_OAUTH_SECRET is not set"
    )
    assert present.status == "success", present.error
    credential.refresh_from_db()
    assert credential.secrets == {"client_secret": "env:SWB_TEST_OAUTH_SECRET"}


def test_client_secret_from_a_file_reference(make_credential, api, oauth_provider, tmp_path):
    secret_file = tmp_path / "client_secret"
    credential = make_credential(
        "oauth2_client_credentials",
        config={"token_url": oauth_provider.token_url, "client_id": CLIENT_ID},
        secrets={"client_secret": f"file:{secret_file}"},
    )
    endpoint = api(credential)

    missing = execute(endpoint)
    secret_file.write_text(CLIENT_SECRET + "\n")
    present = execute(endpoint)

    assert missing.status == "failure"
    assert missing.error.startswith(f"credential could not be obtained: client_secret: secret file {secret_file}")
    assert present.status == "success", present.error


def test_tokens_never_reach_logs_results_or_the_call_log(cc_credential, api, oauth_provider, caplog):
    endpoint = api(cc_credential(), path="/echo-missing")
    oauth_provider.http.route("GET", "/echo-headers", lambda r: (200, {}, {"headers": r.headers}))
    echo = api(endpoint.connection.credential, path="/echo-headers")

    with caplog.at_level("DEBUG"):
        results = [execute(echo).to_dict(), execute(endpoint).to_dict()]

    tokens = oauth_provider.issued_tokens()
    assert tokens
    stored = " ".join(
        str(row) for row in ApiCallLog.objects.values_list("url", "request_headers", "error", "response_preview")
    )
    logged = client_side_log(caplog)
    for value in [*tokens, CLIENT_SECRET]:
        assert value not in logged
        assert value not in str(results)
        assert value not in stored
    assert results[0]["body"]["headers"]["Authorization"] == "Bearer ••••"


def test_50_concurrent_calls_make_one_token_request(transactional_db, tenant, cc_credential, api, oauth_provider):
    from tests.support.concurrency import run_threads

    oauth_provider.token_delay = 0.3
    endpoint = api(cc_credential())

    statuses = run_threads(50, lambda: execute(endpoint, log=False).status)

    assert statuses == ["success"] * 50
    assert oauth_provider.token_count() == 1
    assert oauth_provider.http.count("/api/orders") == 50


def test_50_concurrent_calls_share_one_failure(transactional_db, tenant, cc_credential, api, oauth_provider):
    from tests.support.concurrency import run_threads

    oauth_provider.token_delay = 0.3
    endpoint = api(cc_credential(secret="wrong-secret-value-123"))

    results = run_threads(50, lambda: execute(endpoint, log=False))

    assert {r.status for r in results} == {"failure"}
    assert oauth_provider.token_count() == 1


CROSS_PROCESS = """
from integrations.executor import execute
from integrations.models import Endpoint
from tests.support.concurrency import run_threads

endpoint = Endpoint.objects.select_related("connection__credential", "tenant").get(pk="{endpoint_id}")
while time.time() < START_AT:
    time.sleep(0.005)
print(json.dumps(run_threads(25, lambda: execute(endpoint, log=False).status)))
"""


def test_two_processes_of_25_threads_make_one_token_request(
    transactional_db, tenant, cc_credential, api, oauth_provider
):
    from tests.support.concurrency import run_processes

    oauth_provider.token_delay = 0.5
    endpoint = api(cc_credential())

    outputs = run_processes(2, CROSS_PROCESS.format(endpoint_id=endpoint.pk), start_at=time.time() + 6)

    assert [len(statuses) for statuses in outputs] == [25, 25]
    assert {status for statuses in outputs for status in statuses} == {"success"}
    assert oauth_provider.token_count() == 1
    assert oauth_provider.http.count("/api/orders") == 50


def test_the_connection_test_fetches_a_token_and_shows_it_masked(
    cc_credential, api, oauth_provider, owner_client, other_client
):
    oauth_provider.expires_in = 600
    endpoint = api(cc_credential())

    outcome = owner_client.post(f"/api/v1/connections/{endpoint.connection_id}/test").json()
    foreign = other_client.post(f"/api/v1/connections/{endpoint.connection_id}/test")

    token = oauth_provider.issued_tokens()[0]
    assert outcome["ok"] is True
    assert outcome["auth"]["message"] == "token obtained"
    assert outcome["auth"]["token_type"] == "Bearer"
    assert 590 <= outcome["auth"]["expires_in"] <= 600
    assert outcome["auth"]["token"] == "••••" + token[-4:]
    assert token not in str(outcome)
    assert oauth_provider.token_count() == 1
    assert foreign.status_code == 404


def test_the_connection_test_reports_a_refused_token_request(cc_credential, api, oauth_provider, owner_client):
    endpoint = api(cc_credential(secret="wrong-secret-value-123"))

    outcome = owner_client.post(f"/api/v1/connections/{endpoint.connection_id}/test").json()

    assert outcome["ok"] is False
    assert outcome["error"].startswith("credential could not be obtained: token request refused (HTTP 401)")
    assert "wrong-secret-value-123" not in str(outcome)


def test_a_dry_run_fetches_no_token_and_shows_the_header_masked(cc_credential, api, oauth_provider):
    from integrations.executor import prepare

    endpoint = api(cc_credential())

    prepared = prepare(endpoint, dry_run=True)

    assert prepared.headers["Authorization"] == "Bearer ••••"
    assert prepared.redacted()["headers"]["Authorization"] == "••••"
    assert oauth_provider.token_count("client_credentials") == 0
    assert oauth_provider.http.count("/api/orders") == 0


def test_a_rule_dry_run_over_an_oauth_endpoint_sends_nothing_at_all(cc_credential, api, oauth_provider, clients):
    # given a rule whose CALL_API uses an endpoint behind an OAuth2 client-credentials credential
    endpoint = api(cc_credential())
    rule = clients["admin"].post(
        "/api/v1/rules",
        {
            "name": "Orders",
            "priority": 1,
            "trigger": {"type": "always"},
            "actions": [
                {"type": "CALL_API", "endpoint": str(endpoint.id), "params": {}},
                {"type": "REPLY_TEXT", "template": "ok"},
            ],
        },
        format="json",
    )
    assert rule.status_code == 201, rule.json()

    # when the rule is dry-run
    response = clients["member"].post("/api/v1/rules/dry-run", {"message": "where is my order"}, format="json")

    # then the rendered request is shown and neither the token endpoint nor the API was contacted
    assert response.status_code == 200, response.json()
    assert "'Authorization': '••••'" in str(response.json())
    assert oauth_provider.token_count("client_credentials") == 0
    assert oauth_provider.http.count("/api/orders") == 0
