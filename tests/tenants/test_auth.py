"""Authentication of /api/v1/: Bearer keys (401 exact body) and the admin's session (SPEC §2)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tenants.models import Role

INVALID = {"error": "Invalid or inactive API key"}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Token swb_whatever",
        "Basic dXNlcjpwYXNz",
        "Bearer swb_not-a-real-key",
        "Bearer not-even-prefixed",
        "Bearer swb_a swb_b",
    ],
)
def test_missing_or_invalid_key_is_401_with_the_exact_body(db, header):
    # given a request with no key or a bad one
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    # when it reaches the API
    response = client.get("/api/v1/api-keys")
    # then 401, the exact body, and a Bearer challenge
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_non_ascii_key_is_401(db):
    client = APIClient()
    response = client.get("/api/v1/api-keys", HTTP_AUTHORIZATION="Bearer swb_ключ".encode().decode("latin-1"))
    assert response.status_code == 401
    assert response.json() == INVALID


def test_unauthenticated_write_is_401_not_403(db):
    response = APIClient().post("/api/v1/tenant/webhook-secret")
    assert response.status_code == 401
    assert response.json() == INVALID


def test_session_login_works_for_a_staff_member_of_one_tenant(tenant, make_staff_user):
    # given a staff user who owns one tenant, logged in through the admin's session
    user = make_staff_user("olga", tenant, Role.OWNER)
    client = APIClient()
    client.force_login(user)
    # when they call the API without a key
    response = client.get("/api/v1/api-keys")
    # then the session authenticates them for their tenant
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_session_role_is_the_membership_role(tenant, make_staff_user):
    # given a staff viewer logged in
    client = APIClient()
    client.force_login(make_staff_user("vera", tenant, Role.VIEWER))
    # when they try an owner-only resource
    response = client.get("/api/v1/api-keys")
    # then 403 naming the role
    assert response.status_code == 403
    assert response.json() == {"error": "This action requires the owner role"}


def test_session_user_of_several_tenants_chooses_one_with_a_header(tenant, other_tenant, make_staff_user):
    # given a user who owns two tenants
    user = make_staff_user("multi", tenant, Role.OWNER)
    user.memberships.create(tenant=other_tenant, role=Role.VIEWER)
    client = APIClient()
    client.force_login(user)
    # when they call without choosing, then by slug, then by id
    unchosen = client.get("/api/v1/api-keys")
    by_slug = client.get("/api/v1/api-keys", HTTP_X_SWITCHBOARD_TENANT=tenant.slug)
    by_id = client.get("/api/v1/api-keys", HTTP_X_SWITCHBOARD_TENANT=str(other_tenant.id))
    not_theirs = client.get("/api/v1/api-keys", HTTP_X_SWITCHBOARD_TENANT="no-such-tenant")
    # then they must choose; each choice carries that tenant's role
    assert unchosen.status_code == 403
    assert unchosen.json() == {
        "error": "Choose a tenant: your account belongs to several (or none); send the X-Switchboard-Tenant header"
    }
    assert by_slug.status_code == 200
    assert by_id.status_code == 403 and by_id.json() == {"error": "This action requires the owner role"}
    assert not_theirs.status_code == 403


def test_session_writes_need_the_csrf_token(tenant, make_staff_user):
    # given a logged-in admin with CSRF checks on (as in a browser)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_staff_user("ada", tenant, Role.ADMIN))
    # when they POST without the token
    response = client.post("/api/v1/tenant/webhook-secret")
    # then 403 in the error shape, and nothing rotates
    assert response.status_code == 403
    assert response.json() == {"error": "CSRF Failed: CSRF cookie not set."}


def test_a_key_wins_over_a_session(tenant, other_tenant, make_staff_user, api_client_for):
    # given a browser session of `tenant` and a key of `other_tenant` on the same request
    client = api_client_for(other_tenant, Role.OWNER)
    client.force_login(make_staff_user("both", tenant, Role.OWNER))
    # when listing keys
    names = [item["name"] for item in client.get("/api/v1/api-keys").json()["results"]]
    # then the key decides the tenant
    assert names == ["owner test key"]
