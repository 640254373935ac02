"""API keys: format, hashing, shown once, revocation, expiry, last use, audit (SPEC §2, §13)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from tenants.models import ApiKey, AuditEvent, Role
from tenants.secrets import hash_token
from tenants.services import create_api_key
from tests.support.api import bearer_client as bearer

INVALID = {"error": "Invalid or inactive API key"}


def raw_row(key_id: uuid.UUID) -> dict:
    """The key's database row as stored, read with plain SQL (no model field in between)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM tenants_apikey WHERE id = %s", [ApiKey._meta.pk.get_db_prep_value(key_id, connection)]
        )
        names = [column[0] for column in cursor.description]
        return dict(zip(names, cursor.fetchone()))


def test_create_returns_the_raw_key_once_and_stores_only_its_hash(owner_client, tenant):
    # given an owner
    # when they create a key
    response = owner_client.post("/api/v1/api-keys", {"name": "CI deploys", "role": "member"}, format="json")
    # then the response alone carries the raw key: swb_ + 43 url-safe characters (32 random bytes)
    assert response.status_code == 201
    body = response.json()
    raw = body["key"]
    assert raw.startswith("swb_") and len(raw) == 47
    assert body["name"] == "CI deploys" and body["role"] == "member" and body["prefix"] == raw[:12]
    assert body["is_active"] is True and body["revoked_at"] is None and body["last_used_at"] is None
    # and the database row holds the prefix and the SHA-256 hash, never the raw key
    row = raw_row(uuid.UUID(body["id"]))
    assert row["prefix"] == raw[:12]
    assert row["key_hash"] == hash_token(raw) and len(row["key_hash"]) == 64
    assert not any(raw in str(value) for value in row.values())
    # and reading it back never shows the raw key again
    detail = owner_client.get(f"/api/v1/api-keys/{body['id']}").json()
    assert "key" not in detail
    listed = owner_client.get("/api/v1/api-keys").json()["results"]
    assert all("key" not in item for item in listed)
    # and the new key works
    assert bearer(raw).get("/api/v1/api-keys").status_code == 403  # a member key: authenticated, role too low


def test_list_is_paginated_and_scoped_to_the_tenant(owner_client, other_client, tenant):
    # given the four role keys of `tenant` and one more key of another tenant
    # when the owner lists keys with a page size of 3
    first = owner_client.get("/api/v1/api-keys?page_size=3").json()
    second = owner_client.get("/api/v1/api-keys?page_size=3&page=2").json()
    # then only the tenant's four keys appear, over two pages
    assert first["count"] == 4 and len(first["results"]) == 3
    assert first["next"] == "http://testserver/api/v1/api-keys?page=2&page_size=3" and first["previous"] is None
    assert second["count"] == 4 and len(second["results"]) == 1 and second["next"] is None
    names = sorted(item["name"] for item in first["results"] + second["results"])
    assert names == ["admin test key", "member test key", "owner test key", "viewer test key"]


def test_delete_revokes_and_the_key_then_fails_with_401(owner_client, tenant):
    # given a key in use
    key, raw = create_api_key(tenant, name="to revoke", role=Role.OWNER)
    assert bearer(raw).get("/api/v1/api-keys").status_code == 200
    # when the owner deletes it
    response = owner_client.delete(f"/api/v1/api-keys/{key.id}")
    # then it is revoked (kept for the audit trail, not deleted)
    assert response.status_code == 204
    key.refresh_from_db()
    assert key.revoked_at is not None and key.is_active is False
    assert owner_client.get(f"/api/v1/api-keys/{key.id}").json()["is_active"] is False
    # and it no longer authenticates
    response = bearer(raw).get("/api/v1/api-keys")
    assert response.status_code == 401
    assert response.json() == INVALID
    # and deleting again is harmless
    assert owner_client.delete(f"/api/v1/api-keys/{key.id}").status_code == 204
    assert AuditEvent.objects.filter(object_id=str(key.id), action="revoked").count() == 1


def test_expired_key_fails_with_401(tenant):
    # given a key that expired a second ago
    key, raw = create_api_key(tenant, name="old", role=Role.OWNER)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # when it is used
    response = bearer(raw).get("/api/v1/api-keys")
    # then 401 with the exact body
    assert response.status_code == 401
    assert response.json() == INVALID


def test_key_with_future_expiry_works_and_past_expiry_is_refused_at_creation(owner_client):
    # given an owner
    soon = (timezone.now() + timedelta(days=1)).isoformat()
    past = (timezone.now() - timedelta(days=1)).isoformat()
    # when creating a key that expires tomorrow, and one that expired yesterday
    ok = owner_client.post("/api/v1/api-keys", {"name": "temp", "role": "viewer", "expires_at": soon}, format="json")
    bad = owner_client.post("/api/v1/api-keys", {"name": "dead", "role": "viewer", "expires_at": past}, format="json")
    # then the first works until then, the second is a 400 naming the field
    assert ok.status_code == 201
    assert bearer(ok.json()["key"]).get("/api/v1/tenant/webhook-secret").status_code == 405
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "expires_at: Must be in the future.",
        "details": {"expires_at": ["Must be in the future."]},
    }


def test_last_used_at_is_stamped_on_use(tenant, settings):
    # given a fresh key, never used
    key, raw = create_api_key(tenant, name="fresh", role=Role.OWNER)
    assert key.last_used_at is None
    # when it is used
    before = timezone.now()
    bearer(raw).get("/api/v1/api-keys")
    # then last_used_at is set to the time of use
    key.refresh_from_db()
    assert before <= key.last_used_at <= timezone.now()


def test_last_used_at_is_written_at_most_once_per_resolution(tenant, settings):
    # given a resolution of one minute and a key used a moment ago
    settings.API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
    key, raw = create_api_key(tenant, name="busy", role=Role.OWNER)
    recent = timezone.now() - timedelta(seconds=5)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=recent)
    # when it is used again
    bearer(raw).get("/api/v1/api-keys")
    # then the stamp is not rewritten (one write per minute per key, not one per request)
    key.refresh_from_db()
    assert key.last_used_at == recent


def test_key_create_and_revoke_are_audited_with_actor_and_ip(owner_client, tenant):
    # given an owner key calling from 203.0.113.7
    # when it creates a key and revokes it
    created = owner_client.post(
        "/api/v1/api-keys", {"name": "audited"}, format="json", REMOTE_ADDR="203.0.113.7"
    ).json()
    owner_client.delete(f"/api/v1/api-keys/{created['id']}", REMOTE_ADDR="203.0.113.7")
    # then two audit events name the acting key, the object and the address
    events = list(AuditEvent.objects.filter(object_id=created["id"]).order_by("created_at", "id"))
    actor = ApiKey.objects.get(name="owner test key")
    assert [(e.action, e.object_type, e.object_repr, e.ip_address) for e in events] == [
        ("created", "API key", f"audited ({created['prefix']}…)", "203.0.113.7"),
        ("revoked", "API key", f"audited ({created['prefix']}…)", "203.0.113.7"),
    ]
    assert all(e.actor_api_key_id == actor.id and e.tenant_id == tenant.id for e in events)
    assert events[0].actor == f"API key owner test key ({actor.prefix}…)"
    # and the created key defaults to the member role
    assert created["role"] == "member"


def test_audit_ip_comes_from_x_forwarded_for_only_behind_configured_proxies(owner_client, settings):
    # given one trusted proxy in front of the app
    settings.NUM_PROXIES = 1
    # when a key is created through it, and with a garbled header
    owner_client.post(
        "/api/v1/api-keys",
        {"name": "via proxy"},
        format="json",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.1, 192.0.2.44",
    )
    owner_client.post(
        "/api/v1/api-keys",
        {"name": "garbled"},
        format="json",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="not-an-ip",
    )
    # then the address the proxy saw is recorded (the client-supplied left part is ignored)
    assert AuditEvent.objects.get(object_repr__startswith="via proxy").ip_address == "192.0.2.44"
    assert AuditEvent.objects.get(object_repr__startswith="garbled").ip_address == "10.0.0.2"
