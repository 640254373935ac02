"""`/metrics`: the Prometheus text format, METRICS_TOKEN, HTTP and outgoing-call series, database gauges."""

from __future__ import annotations

import pytest
from django.test import Client

from integrations import executor
from integrations.models import Connection, Endpoint
from tenants import metrics
from tests.support.metrics import scrape


@pytest.fixture
def plain_client():
    return Client()


def test_metrics_need_the_token_when_one_is_set(plain_client, db, settings):
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    missing = plain_client.get("/metrics")
    wrong = plain_client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json() == {"error": "Invalid or missing metrics token"}
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "switchboard_" not in wrong.content.decode()
    assert "switchboard_http_requests_total" in scrape(plain_client, token="scrape-token-0123456789").names()


def test_metrics_are_open_without_a_token(plain_client, db, settings):
    settings.METRICS_TOKEN = ""
    names = scrape(plain_client).names()
    assert {"switchboard_http_requests_total", "switchboard_webhook_attempt_duration_seconds_count"} <= names


def test_http_requests_are_counted_by_route_pattern_and_timed(plain_client, viewer, db):
    before = scrape(plain_client)
    route = "integration/v1/agents"
    viewer.get("/integration/v1/agents")
    viewer.get("/integration/v1/agents")
    viewer.get("/integration/v1/calls/00000000-0000-0000-0000-000000000000/status")
    plain_client.get("/no/such/page")
    plain_client.get("/static/widget/widget.js")
    after = scrape(plain_client)

    counted = "switchboard_http_requests_total"
    assert (
        after.get(counted, route=route, method="GET", status="200")
        - before.get(counted, route=route, method="GET", status="200")
        == 2
    )
    status_route = "integration/v1/calls/<call_id>/status"
    delta = after.get(counted, route=status_route, method="GET", status="404") - before.get(
        counted, route=status_route, method="GET", status="404"
    )
    assert delta == 1  # one series for every call id, not one per id
    assert after.get(counted, route="unmatched", method="GET", status="404") >= 1
    assert (
        after.get(counted, route="static", method="GET", status="200")
        - before.get(counted, route="static", method="GET", status="200")
        == 1
    )
    hist = "switchboard_http_request_duration_seconds"
    assert (
        after.get(f"{hist}_count", route=route, method="GET") - before.get(f"{hist}_count", route=route, method="GET")
        == 2
    )
    assert after.get(f"{hist}_bucket", route=route, method="GET", le="10.0") >= 2


def test_outgoing_executions_by_connection_and_status_with_latency(plain_client, tenant, http_server, db):
    connection = Connection.objects.create(
        tenant=tenant, name="API", base_url=http_server.base_url, retry={"max_retries": 0}
    )
    ok = Endpoint.objects.create(tenant=tenant, connection=connection, name="ok", tool_name="ok", path="/echo")
    broken = Endpoint.objects.create(
        tenant=tenant, connection=connection, name="bad", tool_name="bad", path="/status/500"
    )
    labels = {"tenant": str(tenant.pk), "connection": str(connection.pk)}
    before = scrape(plain_client)

    executor.execute(ok)
    executor.execute(ok)
    executor.execute(broken)
    after = scrape(plain_client)

    total = "switchboard_outgoing_requests_total"
    assert after.get(total, **labels, status="success") - before.get(total, **labels, status="success") == 2
    assert after.get(total, **labels, status="error") - before.get(total, **labels, status="error") == 1
    hist = "switchboard_outgoing_request_duration_seconds"
    assert after.get(f"{hist}_count", **labels) - before.get(f"{hist}_count", **labels) == 3
    assert after.get(f"{hist}_bucket", **labels, le="0.01") <= after.get(f"{hist}_bucket", **labels, le="60.0")
    assert after.get(f"{hist}_sum", **labels) > before.get(f"{hist}_sum", **labels)


def test_a_registered_database_gauge_is_read_at_scrape_time_and_a_broken_one_is_left_out(plain_client, db):
    rows = {"pending": 3}
    metrics.register_gauge(
        "switchboard_test_rows", "Rows by status", ["status"], lambda: [(("pending",), rows["pending"])]
    )
    metrics.register_gauge("switchboard_test_broken", "Raises", [], lambda: 1 / 0)
    try:
        assert scrape(plain_client).get("switchboard_test_rows", status="pending") == 3
        rows["pending"] = 5
        samples = scrape(plain_client)
        assert samples.get("switchboard_test_rows", status="pending") == 5
        assert "switchboard_test_broken" not in samples.names()
        assert "switchboard_calls_in_progress" in samples.names()  # the calls app's own gauge
    finally:
        metrics._gauges.pop("switchboard_test_rows")
        metrics._gauges.pop("switchboard_test_broken")


def test_serve_metrics_exports_this_hosts_counters_for_worker_only_hosts(plain_client, viewer, db):
    import os
    import subprocess
    import sys
    import urllib.error
    import urllib.request
    from pathlib import Path

    from tests.support.metrics import Samples

    viewer.get("/integration/v1/agents")  # counted by this process, into the shared folder
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "METRICS_TOKEN": "worker-host-token"}
    command = [sys.executable, "manage.py", "serve_metrics", "--addr", "127.0.0.1", "--port", "0"]
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(url, headers={"Authorization": "Bearer worker-host-token"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            samples = Samples(answer.read().decode())
            assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert (
            samples.get("switchboard_http_requests_total", route="integration/v1/agents", method="GET", status="200")
            >= 1
        )
        assert "switchboard_calls_in_progress" not in samples.names()  # database gauges are the web's job
    finally:
        server.terminate()
        server.wait(timeout=10)
