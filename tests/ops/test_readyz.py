"""`/readyz`: the database, the cache and the broker each checked for real; a failure is named, with 503."""

from __future__ import annotations

import pytest
from django.db import connection

from tenants import health
from tests.support.http_servers import free_port


def test_ready_when_everything_answers(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok", "broker": "ok"}}
    assert response["Cache-Control"] == "no-store"


def test_an_unreachable_broker_is_named_and_answers_503(client, db, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok" and body["checks"]["cache"] == "ok"
    assert body["checks"]["broker"].startswith("failed: ")
    assert "127.0.0.1" not in body["checks"]["broker"]  # no URL (it may carry a password) in the answer


def test_an_unreachable_cache_is_named(client, db, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0",
        }
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["cache"].startswith("failed: ") and checks["database"] == "ok"
    assert "hunter2" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_database_that_fails_is_named(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise connection.Database.OperationalError("connection to server at 10.0.0.5 failed: password=pw")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    ready, checks = health.readiness()
    assert not ready
    assert checks["database"] == "failed: OperationalError"
    assert "pw" not in str(checks)


def test_healthz_stays_the_cheap_liveness_check(client, db, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    assert client.get("/healthz").json() == {"status": "ok"}
