"""Each role's allowed and denied operations on the foundation's endpoints (SPEC §2, §13)."""

from __future__ import annotations

import pytest

from tenants.models import Role

ROLES = ["viewer", "member", "admin", "owner"]


def expected(allowed_from: str, ok_status: int) -> dict[str, int]:
    rank = ROLES.index(allowed_from)
    return {role: ok_status if ROLES.index(role) >= rank else 403 for role in ROLES}


@pytest.mark.parametrize("role", ROLES)
def test_api_keys_are_owner_only_for_every_operation(clients, tenant, role):
    # given a client of each role and one existing key
    client = clients[role]
    target = clients["owner"].post("/api/v1/api-keys", {"name": "target"}, format="json").json()["id"]
    # when it lists, reads, creates and revokes keys
    statuses = {
        "list": client.get("/api/v1/api-keys").status_code,
        "retrieve": client.get(f"/api/v1/api-keys/{target}").status_code,
        "create": client.post("/api/v1/api-keys", {"name": "x"}, format="json").status_code,
        "revoke": client.delete(f"/api/v1/api-keys/{target}").status_code,
    }
    # then only the owner may
    if role == "owner":
        assert statuses == {"list": 200, "retrieve": 200, "create": 201, "revoke": 204}
    else:
        assert statuses == {"list": 403, "retrieve": 403, "create": 403, "revoke": 403}


@pytest.mark.parametrize("role", ROLES)
def test_denied_roles_get_the_message_naming_the_role(clients, role):
    keys = clients[role].get("/api/v1/api-keys")
    secret = clients[role].post("/api/v1/tenant/webhook-secret")
    if role != "owner":
        assert keys.json() == {"error": "This action requires the owner role"}
    if role in ("viewer", "member"):
        assert secret.json() == {"error": "This action requires the admin role"}


def test_webhook_secret_rotation_needs_admin_or_owner(clients):
    statuses = {role: clients[role].post("/api/v1/tenant/webhook-secret").status_code for role in ROLES}
    assert statuses == expected(Role.ADMIN, 200)


def test_a_role_above_owner_does_not_exist_and_unknown_roles_are_refused(owner_client):
    response = owner_client.post("/api/v1/api-keys", {"name": "x", "role": "superuser"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": 'role: "superuser" is not a valid choice.',
        "details": {"role": ['"superuser" is not a valid choice.']},
    }


@pytest.mark.parametrize("role", ROLES)
def test_keys_can_be_created_with_each_role_and_carry_it(owner_client, role):
    created = owner_client.post("/api/v1/api-keys", {"name": f"{role} key", "role": role}, format="json").json()
    assert created["role"] == role
