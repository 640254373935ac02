"""The calls app's Prometheus series: calls by status, in-progress calls, callback attempts and their
latency, and — with a real Celery worker — counts and task queue delays summed across processes."""

from __future__ import annotations

import pytest
from django.test import Client

from calls import services, webhooks
from calls.events import record_call_event
from calls.models import CallStatus, WebhookDelivery
from tests.calls.conftest import call_body
from tests.support.metrics import scrape
from tests.support.worker import wait_for

CALLS = "switchboard_calls_total"
IN_PROGRESS = "switchboard_calls_in_progress"
ATTEMPTS = "switchboard_webhook_attempts_total"
ATTEMPT_LATENCY = "switchboard_webhook_attempt_duration_seconds_count"


@pytest.fixture
def plain_client():
    return Client()


def test_calls_are_counted_by_each_status_they_reach(
    plain_client, member, agent, trunk, django_capture_on_commit_callbacks
):
    before = scrape(plain_client)
    with django_capture_on_commit_callbacks(execute=True):
        created = member.post("/integration/v1/calls", call_body(agent, trunk), format="json")
    assert created.status_code == 201
    middle = scrape(plain_client)
    call_id = created.json()["call_id"]
    with django_capture_on_commit_callbacks(execute=True):
        record_call_event(call_id, CallStatus.RINGING, "test")
        record_call_event(call_id, CallStatus.RINGING, "test")  # a duplicate: ignored, not counted
        record_call_event(call_id, CallStatus.ANSWERED, "test")
        record_call_event(call_id, CallStatus.COMPLETED, "test")
    after = scrape(plain_client)

    def delta(status):
        return after.get(CALLS, status=status) - before.get(CALLS, status=status)

    assert [delta(s) for s in ("Initiating", "Ringing", "Answered", "Completed")] == [1, 1, 1, 1]
    assert middle.get(IN_PROGRESS, status="Initiating") == 1 and after.get(IN_PROGRESS, status="Initiating") == 0
    assert after.get(IN_PROGRESS, status="Answered") == 0


def test_a_call_rejected_at_capacity_is_counted(plain_client, tenant, agent, trunk, django_capture_on_commit_callbacks):
    trunk.max_channels = 1
    trunk.save()
    before = scrape(plain_client).get(CALLS, status="Rejected — Capacity")
    with django_capture_on_commit_callbacks(execute=True):
        services.trigger_call(tenant, call_body(agent, trunk))
        assert not services.trigger_call(tenant, call_body(agent, trunk)).accepted
    assert scrape(plain_client).get(CALLS, status="Rejected — Capacity") - before == 1


def test_callback_attempts_by_outcome_with_latency(
    plain_client, http_server, tenant, agent, trunk, fast_calls, django_capture_on_commit_callbacks
):
    answers = iter([500, 200])
    http_server.route("POST", "/hook", lambda request: (next(answers), {}, "x"))
    with django_capture_on_commit_callbacks(execute=True):
        call = services.trigger_call(tenant, call_body(agent, trunk, callback_url=http_server.url("/hook"))).call
        record_call_event(call, CallStatus.DECLINE, "test")
    delivery = WebhookDelivery.objects.get(call=call)
    before = scrape(plain_client)
    assert before.get("switchboard_webhook_deliveries_pending") == 1

    with django_capture_on_commit_callbacks(execute=True):
        webhooks.attempt_delivery(delivery.pk)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at)
        webhooks.attempt_delivery(delivery.pk)
    after = scrape(plain_client)

    assert after.get(ATTEMPTS, outcome="retrying") - before.get(ATTEMPTS, outcome="retrying") == 1
    assert after.get(ATTEMPTS, outcome="delivered") - before.get(ATTEMPTS, outcome="delivered") == 1
    assert after.get(ATTEMPT_LATENCY) - before.get(ATTEMPT_LATENCY) == 2
    assert after.get("switchboard_webhook_deliveries_pending") == 0


@pytest.mark.worker
def test_a_worker_process_counts_into_the_same_metrics_with_queue_delays(
    calls_worker, plain_client, member, agent, trunk, http_server
):
    http_server.route("POST", "/hook", lambda request: (200, {}, "ok"))
    before = scrape(plain_client)
    delay = "switchboard_task_queue_delay_seconds_count"
    created = member.post(
        "/integration/v1/calls", call_body(agent, trunk, callback_url=http_server.url("/hook")), format="json"
    )
    assert created.status_code == 201

    wait_for(lambda: http_server.count("/hook") == 1, timeout=30)
    after = wait_for(
        lambda: (
            (s := scrape(plain_client)).get(ATTEMPTS, outcome="delivered") > before.get(ATTEMPTS, outcome="delivered")
            and s
        )
    )

    # the worker moved the call on and sent the callback; this process only reads the shared folder
    assert after.get(CALLS, status="Completed") - before.get(CALLS, status="Completed") == 1
    assert after.get(CALLS, status="Answered") - before.get(CALLS, status="Answered") == 1
    assert after.get(delay, task="calls.advance_call") - before.get(delay, task="calls.advance_call") >= 1
    assert after.get(delay, task="calls.deliver_webhook") - before.get(delay, task="calls.deliver_webhook") >= 1
    queued = "switchboard_task_queue_delay_seconds_bucket"
    assert after.get(queued, task="calls.advance_call", le="+Inf") >= after.get(
        queued, task="calls.advance_call", le="5.0"
    )
