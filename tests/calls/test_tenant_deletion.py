"""A superuser can delete a whole tenant from the admin, calls and their history included."""

from __future__ import annotations

from calls.models import Call, CallEvent, WebhookDelivery
from tenants.models import AuditEvent, Tenant
from tests.calls.conftest import call_body


def test_superuser_deletes_a_tenant_with_calls_events_and_deliveries(
    tenant, agent, trunk, member, client, django_user_model
):
    # given a tenant with a call (its events and a pending callback delivery) and an audit trail
    response = member.post(
        "/integration/v1/calls",
        call_body(agent, trunk, callback_url="http://127.0.0.1:9/hook"),
        format="json",
    )
    assert response.status_code == 201, response.json()
    call = Call.objects.get(pk=response.json()["call_id"])
    from calls.events import record_call_event

    record_call_event(call, "SIP Call Failed", "test")
    assert WebhookDelivery.objects.filter(tenant=tenant).exists()
    superuser = django_user_model.objects.create_superuser("root", password="pw-for-tests-1")
    client.force_login(superuser)

    # when the superuser confirms the tenant's deletion in the admin
    confirm = client.get(f"/admin/tenants/tenant/{tenant.pk}/delete/")
    response = client.post(f"/admin/tenants/tenant/{tenant.pk}/delete/", {"post": "yes"})

    # then nothing blocked it and everything of the tenant is gone
    assert confirm.status_code == 200
    assert b"permission to delete" not in confirm.content
    assert response.status_code == 302
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    assert not Call.objects.filter(pk=call.pk).exists()
    assert not CallEvent.objects.filter(call_id=call.pk).exists()
    assert not WebhookDelivery.objects.filter(tenant_id=tenant.pk).exists()
    assert not AuditEvent.objects.filter(tenant_id=tenant.pk).exists()
