"""Signed callbacks (SPEC §10), sent in-process to a real local HTTP server: payload, signatures,
retries, timeouts, SSRF, bounded redeliveries, the sweep and redelivery."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.utils import timezone

from calls import services, webhooks
from calls.events import record_call_event
from calls.models import AttemptOutcome, Call, CallStatus, DeliveryStatus, WebhookAttempt, WebhookDelivery
from tenants import queue
from tests.calls.conftest import call_body, verify_like_a_receiver


@pytest.fixture
def http_server(http_server):
    """The shared local server, with a receiver at POST /hook that answers 200."""
    http_server.route("POST", "/hook", lambda request: (200, {}, "thanks"))
    return http_server


@pytest.fixture
def finished_call(tenant, agent, trunk, fast_calls):
    def make(url: str, status: str = CallStatus.COMPLETED, **kwargs) -> Call:
        call = services.trigger_call(tenant, call_body(agent, trunk, callback_url=url)).call
        record_call_event(call, CallStatus.ANSWERED, "carrier")
        record_call_event(call, status, "carrier", **kwargs)
        call.refresh_from_db()
        return call

    return make


def due_now(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_payload_and_both_signatures(http_server, finished_call, tenant):
    outcome = {"disposition": "paid", "summary": "ok", "sentiment": "positive"}
    call = finished_call(http_server.url("/hook"), call_outcome=outcome, duration=97)
    delivery = WebhookDelivery.objects.get(call=call)
    attempt = webhooks.attempt_delivery(delivery.pk)
    assert attempt.outcome == AttemptOutcome.SUCCESS and attempt.status_code == 200
    request = http_server.last
    assert request.method == "POST" and request.path == "/hook"
    assert request.header("Content-Type") == "application/json"
    payload = verify_like_a_receiver(tenant.webhook_secret, request)
    assert list(payload) == [
        "event",
        "call_id",
        "call_status",
        "call_outcome",
        "duration",
        "transcript_url",
        "recording_url",
        "metadata",
        "occurred_at",
    ]
    assert payload["event"] == "call.completed" and payload["call_id"] == str(call.pk)
    assert payload["call_status"] == "Completed" and payload["call_outcome"] == outcome
    assert payload["duration"] == 97 and payload["transcript_url"] is None and payload["recording_url"] is None
    assert payload["metadata"] == {"amount_due": "10 USD", "due_date": "2026-07-01"}
    assert payload["occurred_at"].endswith("Z") and len(payload["occurred_at"]) == 24
    assert request.header("webhook-id") == delivery.webhook_id
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.delivered_at and delivery.attempts == 1


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (CallStatus.DECLINE, "call.declined"),
        (CallStatus.SIP_CALL_FAILED, "call.failed"),
        (CallStatus.TRIGGER_FAILED, "call.failed"),
    ],
)
def test_event_names(http_server, finished_call, status, event):
    call = finished_call(http_server.url("/hook"), status=status)
    webhooks.attempt_delivery(WebhookDelivery.objects.get(call=call).pk)
    assert http_server.last.json()["event"] == event
    assert http_server.last.json()["call_status"] == status


def test_rejected_call_is_notified(http_server, tenant, agent, trunk, fast_calls):
    trunk.max_channels = 1
    trunk.save()
    services.trigger_call(tenant, call_body(agent, trunk))
    result = services.trigger_call(tenant, call_body(agent, trunk, callback_url=http_server.url("/hook")))
    assert not result.accepted
    webhooks.attempt_delivery(WebhookDelivery.objects.get(call=result.call).pk)
    payload = verify_like_a_receiver(tenant.webhook_secret, http_server.last)
    assert payload["event"] == "call.rejected" and payload["call_status"] == "Rejected — Capacity"
    assert payload["duration"] == 0 and payload["call_outcome"] is None


def test_500_is_retried_on_schedule_then_delivered(http_server, finished_call, fast_calls):
    fast_calls.CALLS_WEBHOOK_RETRY_SCHEDULE = [5.0, 5.0]
    answers = iter([500, 503, 200])
    http_server.route("POST", "/hook", lambda request: (next(answers), {}, "busy"))
    delivery = WebhookDelivery.objects.get(call=finished_call(http_server.url("/hook")))
    first = webhooks.attempt_delivery(delivery.pk)
    assert (first.outcome, first.status_code, first.error, first.response_excerpt) == (
        "failure",
        500,
        "HTTP 500",
        "busy",
    )
    delivery.refresh_from_db()
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert delivery.status == "pending" and 3 < wait <= 6  # 5 s ± 20 % jitter
    assert webhooks.attempt_delivery(delivery.pk) is None  # not due yet: nothing sent
    for _ in range(2):
        due_now(delivery)
        webhooks.attempt_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 3
    assert list(delivery.attempt_rows.values_list("number", "outcome", "status_code")) == [
        (1, "failure", 500),
        (2, "failure", 503),
        (3, "success", 200),
    ]
    assert http_server.count("/hook") == 3
    assert len({r.header("webhook-id") for r in http_server.requests}) == 1


def test_timeout_is_a_failed_attempt(http_server, finished_call, fast_calls):
    fast_calls.CALLS_WEBHOOK_TIMEOUT_SECONDS = 0.3
    delivery = WebhookDelivery.objects.get(call=finished_call(http_server.url("/slow?ms=1500")))
    attempt = webhooks.attempt_delivery(delivery.pk)
    assert attempt.outcome == "failure" and attempt.status_code is None
    assert attempt.error == "127.0.0.1 did not answer in time"
    assert attempt.duration_ms < 1200


def test_redirects_are_not_followed(http_server, finished_call):
    delivery = WebhookDelivery.objects.get(call=finished_call(http_server.url("/redirect?to=/echo")))
    attempt = webhooks.attempt_delivery(delivery.pk)
    assert (attempt.outcome, attempt.status_code) == ("failure", 302)
    assert http_server.count("/echo") == 0


def test_gives_up_after_the_schedule(http_server, finished_call, fast_calls):
    fast_calls.CALLS_WEBHOOK_RETRY_SCHEDULE = [0.1, 0.1]
    delivery = WebhookDelivery.objects.get(call=finished_call(http_server.url("/status/500")))
    for _ in range(3):
        due_now(delivery)
        webhooks.attempt_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 3 and delivery.next_attempt_at is None
    due_now(delivery)
    assert webhooks.attempt_delivery(delivery.pk) is None
    assert http_server.count("/status/500") == 3


def test_callback_destination_refused_at_send_time_is_final(http_server, finished_call, settings):
    delivery = WebhookDelivery.objects.get(call=finished_call(http_server.url("/hook")))
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    attempt = webhooks.attempt_delivery(delivery.pk)
    assert attempt.error.startswith("destination not allowed")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert http_server.count() == 0


def test_an_attempt_left_open_by_a_lost_worker_is_marked_interrupted(http_server, finished_call):
    delivery = WebhookDelivery.objects.get(call=finished_call(http_server.url("/hook")))
    WebhookAttempt.objects.create(tenant=delivery.tenant, delivery=delivery, number=1)  # "sending", never finished
    WebhookDelivery.objects.filter(pk=delivery.pk).update(claims=1, attempts=1)
    webhooks.attempt_delivery(delivery.pk)
    assert list(delivery.attempt_rows.values_list("number", "outcome")) == [(1, "interrupted"), (2, "success")]


def test_redeliveries_of_a_worker_killing_task_are_bounded(http_server, finished_call, settings):
    last_allowed, too_many = (
        WebhookDelivery.objects.get(call=finished_call(http_server.url("/hook"))) for _ in range(2)
    )
    WebhookDelivery.objects.filter(pk=last_allowed.pk).update(claims=settings.TASK_MAX_DELIVERIES)
    WebhookDelivery.objects.filter(pk=too_many.pk).update(claims=settings.TASK_MAX_DELIVERIES + 1)
    assert webhooks.attempt_delivery(last_allowed.pk).outcome == "success"
    assert webhooks.attempt_delivery(too_many.pk) is None
    too_many.refresh_from_db()
    assert too_many.status == DeliveryStatus.FAILED
    interrupted = settings.TASK_MAX_DELIVERIES + 1
    assert too_many.last_error == f"gave up: the delivery task was interrupted {interrupted} times"
    assert http_server.count() == 1


def test_sweep_enqueues_due_deliveries_not_in_flight(http_server, finished_call):
    url = http_server.url("/hook")
    lost, leased, recent, later = (WebhookDelivery.objects.get(call=finished_call(url)) for _ in range(4))
    long_ago = timezone.now() - timedelta(seconds=120)
    WebhookDelivery.objects.filter(pk__in=[lost.pk, leased.pk]).update(enqueued_at=long_ago)
    WebhookDelivery.objects.filter(pk=leased.pk).update(lease_until=timezone.now() + timedelta(seconds=30))
    WebhookDelivery.objects.filter(pk=later.pk).update(
        enqueued_at=None, next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    WebhookDelivery.objects.filter(pk=recent.pk).update(enqueued_at=timezone.now() + timedelta(seconds=5))
    with mock.patch.object(queue, "enqueue") as enqueue:
        assert webhooks.sweep_due_deliveries() == 1
    enqueue.assert_called_once_with("calls.deliver_webhook", lost.pk)


def test_redeliver_sends_again_with_a_fresh_schedule(http_server, finished_call):
    delivery = WebhookDelivery.objects.get(call=finished_call(http_server.url("/hook")))
    webhooks.attempt_delivery(delivery.pk)
    webhooks.redeliver(delivery)
    webhooks.attempt_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
    assert delivery.attempt_rows.count() == 2
    ids = {r.header("webhook-id") for r in http_server.requests}
    assert ids == {delivery.webhook_id}


def test_default_schedule_is_eight_attempts_over_about_a_day(settings):
    schedule = settings.CALLS_WEBHOOK_RETRY_SCHEDULE
    assert len(schedule) + 1 == 8
    assert 22 * 3600 < sum(schedule) < 25 * 3600
    assert all(a < b for a, b in itertools.pairwise(schedule))
    for attempt, base in enumerate(schedule, start=1):
        assert base * 0.8 <= webhooks.retry_delay(attempt) <= base * 1.2
    assert webhooks.retry_delay(len(schedule) + 1) is None


def _doc_block(language: str, after: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "calls.md").read_text()
    start = text.index(f"```{language}\n", text.index(after)) + len(language) + 4
    return text[start : text.index("```", start)]


def test_the_documented_python_recipe_verifies_a_real_callback(http_server, finished_call, tenant):
    from requests.structures import CaseInsensitiveDict

    call = finished_call(http_server.url("/hook"), status=CallStatus.SIP_CALL_FAILED)
    webhooks.attempt_delivery(WebhookDelivery.objects.get(call=call).pk)
    namespace: dict = {}
    exec(_doc_block("python", "Verify in Python"), namespace)
    headers = CaseInsensitiveDict(http_server.last.headers)
    assert namespace["verify"](tenant.webhook_secret, http_server.last.body, headers) is True
    assert namespace["verify"]("whsec_" + "A" * 44, http_server.last.body, headers) is False


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_documented_node_recipe_verifies_a_real_callback(http_server, finished_call, tenant):
    call = finished_call(http_server.url("/hook"))
    webhooks.attempt_delivery(WebhookDelivery.objects.get(call=call).pk)
    script = _doc_block("js", "Verify in Node") + (
        "const [secret, body, headers] = process.argv.slice(1);"
        "console.log(JSON.stringify(verify(secret, Buffer.from(body, 'base64'), JSON.parse(headers))));"
    )
    headers = json.dumps({name.lower(): value for name, value in http_server.last.headers.items()})
    body = base64.b64encode(http_server.last.body).decode()
    for secret, expected in ((tenant.webhook_secret, "true"), ("whsec_" + "A" * 44, "false")):
        result = subprocess.run(
            ["node", "-e", script, secret, body, headers], capture_output=True, text=True, timeout=30, check=True
        )
        assert result.stdout.strip() == expected
