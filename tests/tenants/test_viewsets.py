"""The base viewset every app's resources extend: roles by action, scoping, 404 for other tenants."""

from __future__ import annotations

import pytest

from tenants.models import AuditEvent

pytestmark = pytest.mark.urls("tests.tenants.urls")

ROLES = ["viewer", "member", "admin", "owner"]


def probe(tenant, name: str) -> AuditEvent:
    return AuditEvent.objects.create(
        tenant=tenant, actor="system", action="created", object_type="probe", object_id="1", object_repr=name
    )


@pytest.mark.parametrize("role", ROLES)
def test_default_roles_read_viewer_action_member_write_admin(clients, tenant, role):
    # given a probe object and a client of each role
    obj = probe(tenant, "mine")
    client = clients[role]
    # when it reads, runs the member action, and deletes
    statuses = (
        client.get("/api/v1/test/probes").status_code,
        client.post(f"/api/v1/test/probes/{obj.pk}/test").status_code,
        client.delete(f"/api/v1/test/probes/{obj.pk}").status_code,
    )
    # then each role gets exactly what it includes
    assert (
        statuses
        == {
            "viewer": (200, 403, 403),
            "member": (200, 200, 403),
            "admin": (200, 200, 204),
            "owner": (200, 200, 204),
        }[role]
    )


def test_lists_hold_only_the_callers_tenant(owner_client, other_client, tenant, other_tenant):
    probe(tenant, "mine")
    probe(other_tenant, "theirs")
    assert [item["object_repr"] for item in owner_client.get("/api/v1/test/probes").json()["results"]] == ["mine"]
    assert [item["object_repr"] for item in other_client.get("/api/v1/test/probes").json()["results"]] == ["theirs"]


def test_another_tenants_object_is_404_for_read_action_and_delete(owner_client, other_tenant):
    # given an object of another tenant
    theirs = probe(other_tenant, "theirs")
    # when the owner of `tenant` touches it
    responses = [
        owner_client.get(f"/api/v1/test/probes/{theirs.pk}"),
        owner_client.post(f"/api/v1/test/probes/{theirs.pk}/test"),
        owner_client.delete(f"/api/v1/test/probes/{theirs.pk}"),
    ]
    # then every answer is the plain 404, and the object survives
    assert [(r.status_code, r.json()) for r in responses] == [(404, {"error": "Not found."})] * 3
    assert AuditEvent.objects.filter(pk=theirs.pk).exists()


def test_create_through_the_base_viewset_sets_the_tenant_and_audits_every_write(tenant, clients, make_staff_user):
    # given a user to add, and an admin key of the tenant
    user = make_staff_user("newcomer")
    admin = clients["admin"]

    # when the admin creates, changes and deletes a membership through a TenantModelViewSet
    created = admin.post("/api/v1/test/membership-probes", {"user": user.pk, "role": "viewer"}, format="json")
    membership_id = created.json()["id"]
    changed = admin.patch(f"/api/v1/test/membership-probes/{membership_id}", {"role": "member"}, format="json")
    deleted = admin.delete(f"/api/v1/test/membership-probes/{membership_id}")

    # then the object belonged to the caller's tenant and each write left an audit event
    assert (created.status_code, changed.status_code, deleted.status_code) == (201, 200, 204)
    events = AuditEvent.objects.filter(tenant=tenant, object_id=membership_id).order_by("created_at")
    assert [event.action for event in events] == ["created", "changed", "deleted"]


def test_a_viewset_listing_drf_mixins_first_is_refused_at_import():
    # given DRF's create mixin listed before the tenant base class
    from rest_framework import mixins

    from tenants.viewsets import TenantGenericViewSet

    # when the class is defined, then it is refused: the mixin would save objects without a tenant
    with pytest.raises(TypeError, match="list TenantGenericViewSet before DRF's mixins"):
        type("Wrong", (mixins.CreateModelMixin, TenantGenericViewSet), {})
