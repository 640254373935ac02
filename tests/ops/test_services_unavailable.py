"""Redis or PostgreSQL down or silent: API requests answer 503 with Retry-After in bounded time when the
cache is, change nothing, and leak no address; a publish to a silent Redis broker and a connection to
a silent database server fail in bounded time; the deployment's settings bound both."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator

import pytest
from django.test import Client

from calls.models import Agent, Call, SipTrunk
from rules.models import WidgetKey
from tenants import ratelimit
from tenants.models import Role
from tenants.services import create_api_key
from tests.support.api import bearer_client
from tests.support.deploy import settings_process
from tests.support.http_servers import free_port, silent_port

UNAVAILABLE = {"error": "Service temporarily unavailable; try again shortly"}
ORIGIN = "https://shop.example"


@pytest.fixture
def silent_server() -> Iterator[int]:
    with silent_port() as port:
        yield port


def _redis_cache(port: int, timeout: float = 0.3) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://:hunter2@127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": timeout, "socket_timeout": timeout},
        }
    }


@pytest.fixture
def key_client(tenant):
    _, raw = create_api_key(tenant, name="member", role=Role.MEMBER)
    return bearer_client(raw)


def _assert_unavailable(response) -> None:
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE
    assert response["Retry-After"] == "5"


@pytest.mark.parametrize("server", ["refusing", "silent"])
def test_api_requests_answer_503_when_the_shared_cache_is_down(
    server, key_client, tenant, settings, silent_server, caplog
):
    port = free_port() if server == "refusing" else silent_server
    settings.CACHES = _redis_cache(port)
    agent = Agent.objects.create(tenant=tenant, name="Sales", agent_code="sales")
    trunk = SipTrunk.objects.create(tenant=tenant, name="Main", trunk_phone="+14155550123")
    body = {"phone_number": "+14155552671", "agent_id": str(agent.pk), "sip_trunk_id": str(trunk.pk)}

    with caplog.at_level(logging.WARNING, logger="tenants.api"):
        listed = key_client.get("/api/v1/agents")
        placed = key_client.post("/integration/v1/calls", body, format="json")

    _assert_unavailable(listed)
    _assert_unavailable(placed)
    assert not Call.objects.exists()
    trunk.refresh_from_db()
    assert trunk.live_calls == 0
    # Logged by the error's class: neither the server's address nor its password.
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "shared cache unavailable" in logged
    assert "hunter2" not in logged and str(port) not in logged


def test_the_api_answers_again_once_the_cache_is_back(key_client, settings):
    settings.CACHES = _redis_cache(free_port())
    _assert_unavailable(key_client.get("/api/v1/agents"))
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ratelimit._counters.clear()
    assert key_client.get("/api/v1/agents").status_code == 200


def test_the_widget_answers_503_readable_by_a_known_site_only(tenant, settings):
    settings.CACHES = _redis_cache(free_port())
    key = WidgetKey.objects.create(tenant=tenant, name="Shop", allowed_origins=[ORIGIN])
    body = json.dumps({"widget_key": key.key, "variables": {}})

    known = Client(HTTP_ORIGIN=ORIGIN).post("/widget/v1/sessions", body, content_type="application/json")
    other = Client(HTTP_ORIGIN="https://evil.example").post(
        "/widget/v1/sessions", body, content_type="application/json"
    )

    _assert_unavailable(known)
    assert known["Access-Control-Allow-Origin"] == ORIGIN
    _assert_unavailable(other)
    assert "Access-Control-Allow-Origin" not in other


def _in_a_fresh_process(tmp_path, code: str, **environment: str) -> subprocess.CompletedProcess:
    """`code` run after config.settings loaded in a new interpreter (DEBUG on, the given variables)."""
    return settings_process(tmp_path, f"import django; django.setup(); {code}", DEBUG="true", **environment)


def _cache_settings(tmp_path, **environment: str) -> subprocess.CompletedProcess:
    code = "import json; from django.conf import settings; print(json.dumps(settings.CACHES['default']))"
    return _in_a_fresh_process(tmp_path, code, **environment)


def test_the_deployment_bounds_every_redis_command_in_time(tmp_path):
    default = _cache_settings(tmp_path, REDIS_URL="redis://127.0.0.1:6379/1")
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["OPTIONS"] == {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}

    chosen = _cache_settings(tmp_path, REDIS_URL="redis://127.0.0.1:6379/1", REDIS_TIMEOUT_SECONDS="0.5")
    assert json.loads(chosen.stdout)["OPTIONS"] == {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}

    refused = _cache_settings(tmp_path, REDIS_URL="redis://127.0.0.1:6379/1", REDIS_TIMEOUT_SECONDS="0")
    assert refused.returncode == 1
    assert "REDIS_TIMEOUT_SECONDS must be a number of seconds above 0" in refused.stderr


def test_a_view_outside_drf_on_an_api_path_answers_503_too(rf):
    import redis

    from tenants.middleware import ApiErrorMiddleware

    middleware = ApiErrorMiddleware(lambda request: None)
    answered = middleware.process_exception(rf.post("/hooks/v1/x"), redis.TimeoutError("Timeout reading"))
    assert answered.status_code == 503 and answered["Retry-After"] == "5"
    assert json.loads(answered.content) == UNAVAILABLE
    # Elsewhere, and for any other error, Django's own handling stays.
    assert middleware.process_exception(rf.get("/admin/"), redis.ConnectionError()) is None
    assert middleware.process_exception(rf.get("/api/v1/agents"), redis.ResponseError("WRONGTYPE")) is None


def test_a_publish_to_a_silent_server_broker_fails_in_bounded_time_and_is_logged(tmp_path, silent_server):
    # Without the broker's socket timeout the publish would wait forever (the subprocess's 60 s guard).
    result = _in_a_fresh_process(
        tmp_path,
        "from tenants import queue; print(queue.enqueue('calls.advance_call', 'x'))",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{silent_server}/0",
        REDIS_TIMEOUT_SECONDS="0.3",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert "could not enqueue calls.advance_call; the sweep will retry" in result.stderr


def test_a_silent_database_server_fails_to_connect_in_bounded_time(tmp_path, silent_server):
    # Any server that accepts and never answers: without connect_timeout libpq would wait for good.
    code = (
        "import json; from django.db import connection; print(json.dumps(connection.get_connection_params(),"
        " default=str)); connection.ensure_connection()"
    )
    result = _in_a_fresh_process(tmp_path, code, DATABASE_URL=f"postgres://switchboard@127.0.0.1:{silent_server}/x")
    params = json.loads(result.stdout.splitlines()[0])
    assert {name: params[name] for name in ("connect_timeout", "keepalives", "keepalives_idle")} == {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 10,
    }
    assert result.returncode == 1
    assert "OperationalError" in result.stderr and "timeout expired" in result.stderr


def test_the_database_url_may_set_its_own_connect_timeout(tmp_path):
    code = "from django.db import connection; print(connection.get_connection_params()['connect_timeout'])"
    result = _in_a_fresh_process(
        tmp_path, code, DATABASE_URL="postgres://switchboard@127.0.0.1:5432/x?connect_timeout=9"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "9"
