"""`POST /api/v1/tenant/webhook-secret`: rotated, returned once, stored encrypted, audited (SPEC §10, §13)."""

from __future__ import annotations

import base64

from django.db import connection

from tenants.models import AuditEvent, Tenant


def raw_secret_column(tenant: Tenant) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT webhook_secret FROM tenants_tenant WHERE id = %s",
            [Tenant._meta.pk.get_db_prep_value(tenant.pk, connection)],
        )
        return bytes(cursor.fetchone()[0])


def test_rotation_returns_a_new_secret_once_and_stores_it_encrypted(clients, tenant):
    # given a tenant with its initial secret
    old = tenant.webhook_secret
    # when an admin rotates it
    response = clients["admin"].post("/api/v1/tenant/webhook-secret")
    # then the response carries the new secret (whsec_ + base64 of 32 bytes), and only that
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["secret"]
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32 and secret != old
    # and the model decrypts to it, while the raw column is a Fernet token without the plaintext
    tenant.refresh_from_db()
    assert tenant.webhook_secret == secret
    column = raw_secret_column(tenant)
    assert column.startswith(b"gAAAAA")
    assert secret.encode() not in column and secret[6:].encode() not in column
    # and no read endpoint returns it again (there is no GET)
    again = clients["admin"].get("/api/v1/tenant/webhook-secret")
    assert again.status_code == 405
    assert again.json() == {"error": 'Method "GET" not allowed.'}


def test_rotation_is_audited_with_actor_and_ip(clients, tenant):
    clients["owner"].post("/api/v1/tenant/webhook-secret", REMOTE_ADDR="198.51.100.9")
    event = AuditEvent.objects.get(action="rotated")
    assert (event.tenant_id, event.object_type, event.object_id, event.object_repr, event.ip_address) == (
        tenant.id,
        "tenant",
        str(tenant.id),
        "Acme",
        "198.51.100.9",
    )
    assert event.actor.startswith("API key owner test key (swb_") and event.actor_api_key.name == "owner test key"


def test_rotation_through_the_session_names_the_user(tenant, make_staff_user):
    from rest_framework.test import APIClient

    client = APIClient()
    user = make_staff_user("ada", tenant, "admin")
    client.force_login(user)
    assert client.post("/api/v1/tenant/webhook-secret").status_code == 200
    event = AuditEvent.objects.get(action="rotated")
    assert (event.actor, event.actor_user_id, event.actor_api_key_id) == ("user ada", user.id, None)


def test_each_tenant_starts_with_its_own_encrypted_secret(tenant, other_tenant):
    assert tenant.webhook_secret.startswith("whsec_") and other_tenant.webhook_secret.startswith("whsec_")
    assert tenant.webhook_secret != other_tenant.webhook_secret
    assert tenant.webhook_secret.encode() not in raw_secret_column(tenant)
