"""Test consoles over REST and in the admin; secrets never in responses, logs or the ApiCallLog."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.calllog import purge_expired
from integrations.executor import execute
from integrations.models import ApiCallLog
from tenants.models import AuditEvent

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def secret_endpoint(make_credential, make_connection, make_endpoint):
    credential = make_credential("bearer", secrets={"token": SECRET})
    connection = make_connection(credential=credential, default_headers={"X-Tenant-Secret": "hdr-" + SECRET})
    return make_endpoint(
        connection,
        query={"city": "{city}"},
        headers={"Accept": "application/json"},
        response_mapping={"echoed": "response.headers.Authorization", "nope": "missing"},
    )


def test_endpoint_test_returns_request_result_and_warnings(clients, secret_endpoint, http_server, tenant):
    response = clients["member"].post(
        f"/api/v1/endpoints/{secret_endpoint.pk}/test",
        {"params": {"city": "Lima"}, "variables": {"lang": "es"}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["request"] == {
        "method": "GET",
        "url": f"{http_server.base_url}/echo?city=Lima",
        "headers": {"X-Tenant-Secret": "••••", "Accept": "application/json", "Authorization": "••••"},
        "body": None,
    }
    assert data["result"]["status"] == "success"
    assert data["result"]["body"]["headers"]["Authorization"] == "Bearer ••••"
    assert data["result"]["headers"]["content-type"] == "application/json"
    assert data["result"]["mapped"] == {"echoed": "Bearer ••••", "nope": None}
    assert data["warnings"] == ["unmapped path: missing"]
    assert isinstance(data["latency_ms"], int)
    assert SECRET not in response.content.decode()
    assert http_server.last.header("Authorization") == f"Bearer {SECRET}"
    assert AuditEvent.objects.filter(tenant=tenant, action="tested", object_type="endpoint").count() == 1
    log = ApiCallLog.objects.get()
    assert log.trigger == "test" and log.actor.startswith("API key member test key")


def test_endpoint_test_reports_missing_variables(clients, make_endpoint):
    endpoint = make_endpoint(query={"q": "{{search}}"})

    data = clients["member"].post(f"/api/v1/endpoints/{endpoint.pk}/test", {}, format="json").json()

    assert data["warnings"] == ["missing variable: search"]


def test_endpoint_test_rejects_bad_input(clients, make_endpoint):
    endpoint = make_endpoint()

    response = clients["member"].post(f"/api/v1/endpoints/{endpoint.pk}/test", {"params": [1]}, format="json")
    unknown = clients["member"].post(f"/api/v1/endpoints/{endpoint.pk}/test", {"bogus": 1}, format="json")

    assert response.status_code == 400
    assert unknown.status_code == 400


def test_viewer_cannot_test(clients, make_endpoint, http_server):
    endpoint = make_endpoint()

    assert clients["viewer"].post(f"/api/v1/endpoints/{endpoint.pk}/test", {}, format="json").status_code == 403
    assert (
        clients["viewer"].post(f"/api/v1/connections/{endpoint.connection.pk}/test", {}, format="json").status_code
        == 403
    )
    assert http_server.count() == 0


def test_connection_test_ok(clients, secret_endpoint, http_server, tenant):
    http_server.route("GET", "/", lambda request: (200, {}, "hello"))

    response = clients["member"].post(f"/api/v1/connections/{secret_endpoint.connection.pk}/test", format="json")

    data = response.json()
    assert response.status_code == 200
    assert data["ok"] is True and data["status_code"] == 200 and data["error"] is None
    assert isinstance(data["latency_ms"], int)
    assert http_server.last.header("Authorization") == f"Bearer {SECRET}"
    assert SECRET not in response.content.decode()
    assert AuditEvent.objects.filter(tenant=tenant, action="tested", object_type="connection").count() == 1


def test_connection_test_reports_rejected_credentials(clients, make_connection, http_server):
    http_server.route("GET", "/", lambda request: (401, {}, "no"))
    connection = make_connection()

    data = clients["member"].post(f"/api/v1/connections/{connection.pk}/test").json()

    assert data["ok"] is False
    assert data["error"] == "credentials rejected (HTTP 401)"


def test_connection_test_reports_unreachable(clients, make_connection):
    connection = make_connection(base_url="http://127.0.0.1:9")

    data = clients["member"].post(f"/api/v1/connections/{connection.pk}/test").json()

    assert data["ok"] is False and data["error"]


def test_api_call_log_is_written_redacted(
    secret_endpoint, http_server, make_credential, make_connection, make_endpoint
):
    query_credential = make_credential(
        "api_key", config={"placement": "query", "param_name": "k"}, secrets={"key": SECRET}
    )
    query_endpoint = make_endpoint(make_connection(credential=query_credential), query={"city": "{city}"})

    execute(secret_endpoint, params={"city": "Lima"}, trigger="rule")
    execute(query_endpoint, params={"city": "Lima"}, trigger="tool")

    header_log, query_log = ApiCallLog.objects.order_by("created_at")
    assert header_log.trigger == "rule" and header_log.status == "success" and header_log.status_code == 200
    assert header_log.request_headers["Authorization"] == "••••"
    assert header_log.request_headers["X-Tenant-Secret"] == "••••"
    assert header_log.attempts == 1 and header_log.response_size > 0 and header_log.duration_ms >= 0
    assert query_log.url == f"{http_server.base_url}/echo?city=Lima&k=••••"
    for log in (header_log, query_log):
        stored = json.dumps([log.url, log.request_headers, log.response_preview, log.error])
        assert SECRET not in stored


def test_secrets_never_reach_the_logs(secret_endpoint, make_endpoint, caplog, http_server):
    caplog.set_level(logging.DEBUG)
    failing = make_endpoint(secret_endpoint.connection, path="/status/500", tool_name="fails")

    execute(secret_endpoint, params={"city": "Lima"})
    execute(failing)

    assert caplog.records, "the failing call is logged"
    assert SECRET not in caplog.text


def test_purge_drops_only_expired_logs(secret_endpoint, settings):
    settings.API_CALL_LOG_RETENTION_DAYS = 7
    execute(secret_endpoint, params={"city": "x"})
    execute(secret_endpoint, params={"city": "y"})
    ApiCallLog.objects.filter(pk=ApiCallLog.objects.first().pk).update(created_at=timezone.now() - timedelta(days=8))

    assert purge_expired() == 1
    assert ApiCallLog.objects.count() == 1
    assert purge_expired() == 0


def test_purge_is_scheduled():
    from django.conf import settings

    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "integrations.purge_api_call_logs"]
    assert len(entries) == 1


def test_a_query_secret_is_absent_from_an_exception_result_and_its_log(make_credential, make_connection, make_endpoint):
    credential = make_credential("api_key", config={"placement": "query"}, secrets={"key": SECRET})
    endpoint = make_endpoint(
        make_connection(credential=credential, base_url="http://127.0.0.1:9", retry={"max_retries": 0})
    )

    result = execute(endpoint)

    assert result.status == "exception"
    assert SECRET not in json.dumps(result.to_dict())
    log = ApiCallLog.objects.get()
    assert log.url == "http://127.0.0.1:9/echo?api_key=••••"
    assert SECRET not in log.error


def test_the_purge_task_runs_the_same_service(secret_endpoint, settings):
    from integrations.tasks import purge_api_call_logs

    execute(secret_endpoint, params={"city": "x"})
    ApiCallLog.objects.update(created_at=timezone.now() - timedelta(days=settings.API_CALL_LOG_RETENTION_DAYS + 1))

    assert purge_api_call_logs() == 1
    assert not ApiCallLog.objects.exists()


def test_log_rows_are_written_outside_a_transaction_too(transactional_db, make_endpoint, http_server):
    from django.db import connection

    assert not connection.in_atomic_block
    execute(make_endpoint(), trigger="api")

    assert ApiCallLog.objects.get().status == "success"


def test_configured_headers_show_redacted_and_their_values_are_scrubbed_from_bodies(
    clients, make_connection, make_endpoint
):
    connection = make_connection(default_headers={"X-Channel": "voice-channel", "X-Auth-Code": "code-98765"})
    endpoint = make_endpoint(connection, headers={"Accept": "application/json"})

    data = clients["member"].post(f"/api/v1/endpoints/{endpoint.pk}/test", {}, format="json").json()

    assert data["request"]["headers"] == {"X-Channel": "••••", "X-Auth-Code": "••••", "Accept": "application/json"}
    echoed = data["result"]["body"]["headers"]
    # SPEC §3 counts default headers as secrets, whatever their name looks like.
    assert echoed["X-Channel"] == "••••"
    assert echoed["X-Auth-Code"] == "••••"
