"""API keys are remembered by each process for at most API_KEY_CACHE_SECONDS: no database read per
request, and a revocation, expiry or deletion still takes effect everywhere within that time."""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants.models import ApiKey, Role
from tenants.services import create_api_key
from tests.support.api import bearer_client

INVALID = {"error": "Invalid or inactive API key"}


def _key_reads(queries) -> int:
    return sum('FROM "tenants_apikey"' in q["sql"] and q["sql"].startswith("SELECT") for q in queries)


def test_a_known_key_is_not_read_from_the_database_again(tenant, settings):
    # given a key that authenticated once (last_used_at already fresh)
    settings.API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
    _, raw = create_api_key(tenant, name="k", role=Role.OWNER)
    client = bearer_client(raw)
    assert client.get("/api/v1/api-keys").status_code == 200
    # when it is used again
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/agents")
    # then it is accepted without reading tenants_apikey, nor writing last_used_at again
    assert response.status_code == 200
    assert _key_reads(queries.captured_queries) == 0
    assert not any(q["sql"].startswith("UPDATE") for q in queries.captured_queries)


def test_revoking_through_the_api_takes_effect_at_once(tenant, owner_client):
    # given a key that was just used
    key, raw = create_api_key(tenant, name="soon revoked", role=Role.MEMBER)
    client = bearer_client(raw)
    assert client.get("/api/v1/agents").status_code == 200
    # when the owner revokes it
    assert owner_client.delete(f"/api/v1/api-keys/{key.pk}").status_code in (200, 204)
    # then its next request is refused
    response = client.get("/api/v1/agents")
    assert response.status_code == 401 and response.json() == INVALID


def test_a_revocation_made_elsewhere_takes_effect_within_the_cache_time(tenant, settings):
    # given a key remembered for 0.2 s, revoked by another process (a plain database update here)
    settings.API_KEY_CACHE_SECONDS = 0.2
    key, raw = create_api_key(tenant, name="k", role=Role.MEMBER)
    client = bearer_client(raw)
    assert client.get("/api/v1/agents").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    # when the remembered entry has lapsed
    time.sleep(0.3)
    # then the key is refused
    assert client.get("/api/v1/agents").status_code == 401


def test_a_deleted_key_is_refused_once_the_cache_time_passed(tenant, settings):
    settings.API_KEY_CACHE_SECONDS = 0.2
    key, raw = create_api_key(tenant, name="k", role=Role.MEMBER)
    client = bearer_client(raw)
    assert client.get("/api/v1/agents").status_code == 200
    ApiKey.objects.filter(pk=key.pk).delete()
    time.sleep(0.3)
    assert client.get("/api/v1/agents").status_code == 401


def test_a_remembered_key_that_expires_is_refused_at_once(tenant):
    # given a key remembered while it was valid, which expires a moment later
    _, raw = create_api_key(tenant, name="k", role=Role.MEMBER, expires_at=timezone.now() + timedelta(seconds=0.3))
    client = bearer_client(raw)
    assert client.get("/api/v1/agents").status_code == 200
    time.sleep(0.35)
    # then the expiry is checked on the remembered copy too
    assert client.get("/api/v1/agents").status_code == 401


def test_with_no_cache_time_every_request_reads_the_key(tenant, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    settings.API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
    _, raw = create_api_key(tenant, name="k", role=Role.OWNER)
    client = bearer_client(raw)
    client.get("/api/v1/agents")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/agents").status_code == 200
    assert _key_reads(queries.captured_queries) == 1


def test_a_change_to_the_remembered_tenant_in_one_request_does_not_leak_into_the_next(tenant, settings):
    # given a remembered key
    settings.API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
    _, raw = create_api_key(tenant, name="k", role=Role.OWNER)
    client = bearer_client(raw)
    client.get("/api/v1/agents")
    from tenants.auth import authenticate_api_key

    # when one request's copy is changed in memory
    first = authenticate_api_key(raw)
    first.tenant.name = "changed in memory only"
    first.role = Role.VIEWER
    # then the next request gets a fresh copy
    second = authenticate_api_key(raw)
    assert second.tenant.name == tenant.name and second.role == Role.OWNER


def test_a_request_that_repoints_its_key_copy_leaves_the_remembered_key_alone(tenant, other_tenant):
    # given a remembered key
    _, raw = create_api_key(tenant, name="k", role=Role.OWNER)
    from tenants.auth import authenticate_api_key

    first = authenticate_api_key(raw)
    # when one request's copy points at another tenant and marks its state
    first.tenant = other_tenant
    first._state.adding = True
    # then the next request's copy still has the key's own tenant and state
    second = authenticate_api_key(raw)
    assert second.tenant.pk == tenant.pk and second.tenant_id == tenant.pk
    assert second._state.adding is False and second.tenant is not first.tenant
