"""One tenant never sees another's objects: 404 exactly like an id that does not exist (SPEC §2)."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from tenants import scoping
from tenants.models import ApiKey, Role
from tenants.services import create_api_key
from tests.support.api import bearer_client

NOT_FOUND = (404, {"error": "Not found."})


def answers(response) -> tuple:
    return response.status_code, response.json()


def test_another_tenants_api_key_is_404_like_a_random_and_a_malformed_id(owner_client, other_tenant):
    # given a key of another tenant
    theirs, theirs_raw = create_api_key(other_tenant, name="theirs", role=Role.OWNER)
    # when the owner of `tenant` reads or revokes it, a random UUID, and a malformed id
    results = {
        "get theirs": answers(owner_client.get(f"/api/v1/api-keys/{theirs.id}")),
        "delete theirs": answers(owner_client.delete(f"/api/v1/api-keys/{theirs.id}")),
        "get random": answers(owner_client.get(f"/api/v1/api-keys/{uuid.uuid4()}")),
        "delete random": answers(owner_client.delete(f"/api/v1/api-keys/{uuid.uuid4()}")),
        "get malformed": answers(owner_client.get("/api/v1/api-keys/not-a-uuid")),
        "delete malformed": answers(owner_client.delete("/api/v1/api-keys/not-a-uuid")),
    }
    # then every answer is the same 404, and the key is untouched and still works
    assert results == dict.fromkeys(results, NOT_FOUND)
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert bearer_client(theirs_raw).get("/api/v1/api-keys").status_code == 200


def test_an_object_of_another_tenant_is_never_listed(owner_client, other_client):
    mine = {item["name"] for item in owner_client.get("/api/v1/api-keys").json()["results"]}
    theirs = {item["name"] for item in other_client.get("/api/v1/api-keys").json()["results"]}
    assert mine == {"viewer test key", "member test key", "admin test key", "owner test key"}
    assert theirs == {"owner test key"}
    assert len(ApiKey.objects.all()) == 5


def test_for_tenant_without_a_tenant_is_empty(tenant):
    create_api_key(tenant, name="k")
    assert list(scoping.for_tenant(ApiKey, None)) == []
    assert [k.name for k in scoping.for_tenant(ApiKey, tenant)] == ["k"]


@pytest.mark.parametrize("lookup", [{"pk": "nope"}, {"pk": None}, {"pk": 12}, {"name": "missing"}])
def test_get_for_tenant_or_404_turns_every_miss_into_http404(tenant, lookup):
    create_api_key(tenant, name="k")
    with pytest.raises(Http404):
        scoping.get_for_tenant_or_404(ApiKey, tenant, **lookup)


def test_get_for_tenant_or_404_finds_only_its_own(tenant, other_tenant):
    key, _ = create_api_key(tenant, name="k")
    assert scoping.get_for_tenant_or_404(ApiKey.objects.all(), tenant, pk=key.pk) == key
    with pytest.raises(Http404):
        scoping.get_for_tenant_or_404(ApiKey, other_tenant, pk=key.pk)


def test_for_user_scopes_by_membership_and_role(tenant, other_tenant, make_staff_user, django_user_model):
    # given keys in two tenants and users with different standing
    create_api_key(tenant, name="a")
    create_api_key(other_tenant, name="b")
    viewer_here_owner_there = make_staff_user("split", tenant, Role.VIEWER)
    viewer_here_owner_there.memberships.create(tenant=other_tenant, role=Role.OWNER)
    root = django_user_model.objects.create_superuser("root", password="pw-for-tests-1")
    outsider = make_staff_user("outsider")

    def names(user, **kwargs):
        return sorted(k.name for k in scoping.for_user(ApiKey, user, **kwargs))

    # then each sees exactly the tenants it may
    assert names(viewer_here_owner_there) == ["a", "b"]
    assert names(viewer_here_owner_there, min_role=Role.OWNER) == ["b"]
    assert names(root) == ["a", "b"]
    assert names(outsider) == []
    assert names(AnonymousUser()) == []
    assert names(None) == []


def test_role_for_user(tenant, make_staff_user, django_user_model):
    admin = make_staff_user("ad", tenant, Role.ADMIN)
    root = django_user_model.objects.create_superuser("root2", password="pw-for-tests-1")
    assert scoping.role_for_user(admin, tenant) == "admin"
    assert scoping.role_for_user(root, tenant) == "owner"
    assert scoping.role_for_user(make_staff_user("nobody"), tenant) is None
    assert scoping.role_for_user(AnonymousUser(), tenant) is None
