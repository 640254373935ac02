"""The admin of calls: scoped lists, read-only calls with their event history, deliveries with
attempts and the redeliver action, live channel usage on trunks, the stalled filter; the demo data."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from calls import demo, dialing, services, webhooks
from calls.events import record_call_event
from calls.models import Agent, Call, CallStatus, SipTrunk, WebhookDelivery
from tests.calls.conftest import call_body


@pytest.fixture
def admin_browser(tenant, make_staff_user) -> Client:
    client = Client()
    client.force_login(make_staff_user("ops", tenant, role="admin"))
    return client


@pytest.fixture
def finished(tenant, agent, trunk):
    call = services.trigger_call(tenant, call_body(agent, trunk, callback_url="http://127.0.0.1:9/hook")).call
    record_call_event(call, CallStatus.ANSWERED, "carrier")
    record_call_event(call, CallStatus.COMPLETED, "carrier")
    return call


def test_changelists_render_scoped(admin_browser, finished, other_tenant, make_agent):
    make_agent(other_tenant, name="Not mine", agent_code="nm")
    for path in ("agent", "siptrunk", "call", "webhookdelivery"):
        response = admin_browser.get(f"/admin/calls/{path}/")
        assert response.status_code == 200, path
    assert "Not mine" not in admin_browser.get("/admin/calls/agent/").content.decode()


def test_trunk_list_shows_live_channels(admin_browser, tenant, agent, trunk):
    services.trigger_call(tenant, call_body(agent, trunk))
    assert "1 / 10" in admin_browser.get("/admin/calls/siptrunk/").content.decode()


def test_call_page_is_read_only_with_event_history(admin_browser, finished):
    page = admin_browser.get(f"/admin/calls/call/{finished.pk}/change/").content.decode()
    assert "Event history" in page
    for status in ("Initiating", "Answered", "Completed"):
        assert status in page
    assert 'name="_save"' not in page


def test_other_tenants_calls_are_invisible(admin_browser, other_tenant, make_agent, make_trunk):
    theirs = services.trigger_call(other_tenant, call_body(make_agent(other_tenant), make_trunk(other_tenant))).call
    response = admin_browser.get(f"/admin/calls/call/{theirs.pk}/change/")
    assert response.status_code == 302  # "doesn't exist", like any unknown id
    assert admin_browser.get("/admin/calls/call/").context["cl"].result_count == 0


def test_status_and_stalled_filters(admin_browser, tenant, agent, trunk):
    stalled = services.trigger_call(tenant, call_body(agent, trunk, phone_number="+447911123456")).call
    record_call_event(stalled, CallStatus.ANSWERED, "carrier")
    Call.objects.filter(pk=stalled.pk).update(last_updated=timezone.now() - timedelta(minutes=11))
    dialing.sweep_stalled()
    services.trigger_call(tenant, call_body(agent, trunk))
    page = admin_browser.get("/admin/calls/call/?stalled=yes").content.decode()
    assert "+447911123456" in page and "+14155552671" not in page
    page = admin_browser.get("/admin/calls/call/", {"status__exact": "Initiating"}).content.decode()
    assert "+14155552671" in page and "+447911123456" not in page


def test_delivery_page_and_redeliver_action(admin_browser, finished):
    delivery = WebhookDelivery.objects.get(call=finished)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    assert admin_browser.get(f"/admin/calls/webhookdelivery/{delivery.pk}/change/").status_code == 200
    with mock.patch.object(webhooks, "redeliver", wraps=webhooks.redeliver) as redeliver:
        response = admin_browser.post(
            "/admin/calls/webhookdelivery/", {"action": "redeliver", "_selected_action": [str(delivery.pk)]}
        )
    assert response.status_code == 302
    redeliver.assert_called_once()
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None


def test_viewer_sees_calls_but_cannot_edit_agents(tenant, make_staff_user, agent):
    client = Client()
    client.force_login(make_staff_user("watcher", tenant, role="viewer"))
    assert client.get("/admin/calls/call/").status_code == 200
    assert client.get("/admin/calls/agent/add/").status_code == 403
    response = client.get("/admin/calls/webhookdelivery/")
    assert 'value="redeliver"' not in response.content.decode()


def test_admin_validates_trunk_config(admin_browser):
    response = admin_browser.post(
        "/admin/calls/siptrunk/add/",
        {
            "name": "Bad",
            "trunk_phone": "12345",
            "max_cps": 1,
            "max_channels": 1,
            "status": "active",
            "dialer": "simulated",
            "dialer_config": '{"outcome": "busy"}',
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "E.164" in page and "outcome must be one of" in page
    assert not SipTrunk.objects.exists()


def test_demo_load_is_idempotent_and_can_place_a_call(tenant):
    demo.load(tenant)
    demo.load(tenant)
    assert Agent.objects.filter(tenant=tenant).count() == 2  # the payment reminder and the talking agent
    agent = Agent.objects.get(tenant=tenant, agent_code=demo.DEMO_AGENT_CODE)
    trunk = SipTrunk.objects.get(tenant=tenant, name=demo.DEMO_TRUNK_NAME)
    assert trunk.dialer == "simulated" and SipTrunk.objects.filter(tenant=tenant).count() == 2
    metadata = agent.input_schema["sample_context"]
    result = services.trigger_call(
        tenant,
        {
            "phone_number": "+14155552671",
            "agent_id": str(agent.pk),
            "sip_trunk_id": str(trunk.pk),
            "metadata": metadata,
        },
    )
    assert result.accepted


def test_call_page_shows_every_field():
    from django.contrib import admin

    shown = {f for _, options in admin.site._registry[Call].fieldsets for f in options["fields"]}
    assert shown == {f.name for f in Call._meta.fields} | {"transcript"}  # every field, and the transcript


def test_statuses_are_shown_as_the_api_spells_them(admin_browser, tenant, agent, trunk):
    # the admin showed "Sip Call Failed" and "Rejected Capacity" (Django's title-cased member names)
    assert [label for value, label in CallStatus.choices] == list(CallStatus.values)
    Call.objects.create(
        tenant=tenant, agent=agent, sip_trunk=trunk, phone_number="+14155552671", status=CallStatus.SIP_CALL_FAILED
    )
    page = admin_browser.get("/admin/calls/call/").content.decode()
    assert "SIP Call Failed" in page and "Sip Call Failed" not in page


def test_admin_refuses_a_trunk_without_capacity_like_the_api(admin_browser):
    # the admin saved max_cps 0 / max_channels 0 (a trunk refusing every call); the API answers 400
    body = {"name": "Zero", "trunk_phone": "+14155552671", "status": "active", "dialer": "simulated"}
    page = admin_browser.post(
        "/admin/calls/siptrunk/add/", {**body, "max_cps": 0, "max_channels": 0, "dialer_config": "{}"}
    )
    assert page.status_code == 200 and page.content.decode().count("greater than or equal to 1") == 2
    assert not SipTrunk.objects.exists()
    ok = admin_browser.post(
        "/admin/calls/siptrunk/add/", {**body, "max_cps": 2, "max_channels": 3, "dialer_config": "{}"}
    )
    assert ok.status_code == 302 and SipTrunk.objects.get().max_channels == 3
