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
