"""End to end on a real Celery worker: the simulated dialer, signed callbacks to a real receiver,
retries until the receiver recovers, and a worker killed in the middle of a delivery."""

from __future__ import annotations

import threading

import pytest

from calls import services, webhooks
from calls.events import record_call_event
from calls.models import Call, CallStatus, DeliveryStatus, WebhookDelivery
from tests.calls.conftest import call_body, verify_like_a_receiver
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.worker


def delivery_of(call: Call) -> WebhookDelivery | None:
    return WebhookDelivery.objects.filter(call=call).first()


def test_call_completes_end_to_end_and_the_signed_callback_arrives(
    calls_worker, http_server, member, tenant, agent, trunk
):
    http_server.route("POST", "/hook", lambda request: (200, {}, "ok"))
    body = call_body(agent, trunk, callback_url=http_server.url("/hook"))
    response = member.post("/integration/v1/calls", body, format="json")
    assert response.status_code == 201
    poll_url = response.json()["poll_url"]

    wait_for(lambda: http_server.count("/hook") == 1, timeout=30)
    status = member.get(poll_url).json()
    assert status["call_status"] == "Completed" and status["is_terminal"] is True
    assert status["call_outcome"]["disposition"] == "completed"
    call = Call.objects.get(pk=response.json()["call_id"])
    assert status["start_timestamp"] and status["end_timestamp"]
    assert status["duration"] == round((call.end_timestamp - call.start_timestamp).total_seconds())

    payload = verify_like_a_receiver(tenant.webhook_secret, http_server.last)
    assert payload["event"] == "call.completed" and payload["call_id"] == response.json()["call_id"]
    assert payload["occurred_at"] == status["end_timestamp"]
    assert [e.status for e in call.events.filter(ignored=False)] == ["Initiating", "Ringing", "Answered", "Completed"]
    delivery = wait_for(lambda: WebhookDelivery.objects.filter(call=call, status=DeliveryStatus.DELIVERED).first())
    assert delivery.attempts == 1 and http_server.last.header("webhook-id") == delivery.webhook_id


def test_failed_deliveries_are_retried_until_the_receiver_recovers(calls_worker, http_server, tenant, agent, trunk):
    answers = iter(["500", "500", "hang", "200"])

    def flaky(request):
        answer = next(answers, "200")
        if answer == "hang":
            threading.Event().wait(2.0)  # longer than the worker's 1 s timeout
            return 200, {}, "too late"
        return int(answer), {}, answer

    http_server.route("POST", "/hook", flaky)
    call = services.trigger_call(tenant, call_body(agent, trunk, callback_url=http_server.url("/hook"))).call
    record_call_event(call, CallStatus.DECLINE, "test")

    delivered = wait_for(
        lambda: WebhookDelivery.objects.filter(call=call, status=DeliveryStatus.DELIVERED).first(), timeout=40
    )
    assert http_server.count("/hook") == 4
    assert len({r.header("webhook-id") for r in http_server.requests}) == 1
    attempts = list(delivered.attempt_rows.values_list("number", "outcome", "status_code", "error"))
    assert attempts == [
        (1, "failure", 500, "HTTP 500"),
        (2, "failure", 500, "HTTP 500"),
        (3, "failure", None, "127.0.0.1 did not answer in time"),
        (4, "success", 200, ""),
    ]
    for request in http_server.requests:
        assert verify_like_a_receiver(tenant.webhook_secret, request)["event"] == "call.declined"


def test_a_worker_killed_mid_delivery_loses_nothing(calls_worker, http_server, tenant, agent, trunk):
    release = threading.Event()

    def hold_the_first(request):
        if http_server.count("/hook") == 1:
            release.wait(20)
        return 200, {}, "ok"

    http_server.route("POST", "/hook", hold_the_first)
    call = services.trigger_call(tenant, call_body(agent, trunk, callback_url=http_server.url("/hook"))).call
    record_call_event(call, CallStatus.SIP_CALL_FAILED, "test")

    wait_for(lambda: http_server.count("/hook") == 1, timeout=30)  # the worker is inside the attempt
    calls_worker.kill()
    release.set()
    replacement = WorkerProcess(calls_worker.queue, calls_worker.env)
    replacement.start()
    try:

        def swept_and_delivered():
            webhooks.sweep_due_deliveries()  # what the beat schedule runs every few seconds
            return WebhookDelivery.objects.filter(call=call, status=DeliveryStatus.DELIVERED).first()

        delivery = wait_for(swept_and_delivered, timeout=40, interval=0.3)
    finally:
        replacement.stop()
    assert list(delivery.attempt_rows.values_list("number", "outcome")) == [(1, "interrupted"), (2, "success")]
    assert http_server.count("/hook") == 2
    first, second = http_server.requests
    assert first.header("webhook-id") == second.header("webhook-id") == delivery.webhook_id
    assert first.body == second.body
    verify_like_a_receiver(tenant.webhook_secret, second)
