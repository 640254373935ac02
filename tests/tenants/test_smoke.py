from __future__ import annotations

from tenants.models import ApiKey


def test_api_key_lists_and_hashes(owner_client, tenant):
    response = owner_client.get("/api/v1/api-keys")
    assert response.status_code == 200
    assert response.json()["count"] == 4
    raw = owner_client.raw_key
    assert not ApiKey.objects.filter(key_hash=raw).exists()
    assert raw.startswith("swb_") and len(raw) == 47


def test_unauthenticated_is_401(client, db):
    response = client.get("/api/v1/api-keys")
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid or inactive API key"}


def test_viewer_cannot_list_keys(clients):
    response = clients["viewer"].get("/api/v1/api-keys")
    assert response.status_code == 403
    assert response.json() == {"error": "This action requires the owner role"}


def test_unknown_route_json_404(owner_client):
    response = owner_client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}


def test_worker_round_trip(celery_worker_process):
    from django.core.cache import cache

    from tenants.tasks import heartbeat
    from tests.support.worker import wait_for

    heartbeat.delay("nonce-1")
    wait_for(lambda: cache.get("worker:heartbeat:nonce-1"), timeout=60)
