"""The calls admin in a real browser (headless Chromium): call list, event history, redeliver."""

from __future__ import annotations

from calls import services
from calls.events import record_call_event
from calls.models import CallStatus, WebhookDelivery
from tests.calls.conftest import call_body


def test_operator_reads_a_call_and_redelivers_its_callback(page, admin_login, make_staff_user, tenant, agent, trunk):
    make_staff_user("operator", tenant, role="admin")
    call = services.trigger_call(tenant, call_body(agent, trunk, callback_url="http://127.0.0.1:9/hook")).call
    record_call_event(call, CallStatus.RINGING, "carrier")
    record_call_event(call, CallStatus.DECLINE, "carrier")
    record_call_event(call, CallStatus.ANSWERED, "carrier")  # late: ignored
    delivery = WebhookDelivery.objects.get(call=call)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)

    admin_login("operator")
    page.goto("/admin/calls/call/?status__exact=Decline")
    page.click(f"a[href*='{call.pk}']")
    history = page.locator("text=Event history").locator("xpath=ancestor::fieldset").inner_text()
    for text in ("Initiating", "Ringing", "Decline", "Answered", "call is already final (Decline)"):
        assert text in history
    page.screenshot(path=".local/calls-admin-call.png", full_page=True)

    page.goto("/admin/calls/webhookdelivery/")
    page.check(f"input[name=_selected_action][value='{delivery.pk}']")
    page.select_option("select[name=action]", "redeliver")
    page.click("button[name=index]")
    assert "Queued 1 notification(s) for redelivery." in page.locator(".messagelist").inner_text()
    delivery.refresh_from_db()
    assert delivery.status == "pending"
