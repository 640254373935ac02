"""record_call_event transitions, the simulated dialer's steps, claims and sweeps (in-process)."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from calls import dialing, services
from calls.events import record_call_event
from calls.models import Call, CallEvent, CallStatus, WebhookDelivery
from tenants import queue
from tests.calls.conftest import call_body


@pytest.fixture
def make_call(tenant, agent, trunk):
    def make(**overrides) -> Call:
        result = services.trigger_call(tenant, call_body(agent, trunk, **overrides))
        assert result.accepted
        return result.call

    return make


def statuses(call: Call) -> list[tuple[str, bool]]:
    return list(CallEvent.objects.filter(call=call).values_list("status", "ignored"))


def test_forward_transitions_and_terminal_effects(make_call):
    call = make_call(callback_url="http://127.0.0.1:9/hook")
    record_call_event(call, CallStatus.RINGING, "carrier")
    answered = timezone.now()
    record_call_event(call, CallStatus.ANSWERED, "carrier", occurred_at=answered)
    outcome = {"disposition": "paid", "summary": "Promised to pay", "sentiment": "positive"}
    record_call_event(
        call,
        CallStatus.COMPLETED,
        "carrier",
        occurred_at=answered + timedelta(seconds=97),
        call_outcome=outcome,
        transcript_url="https://example.com/t/1",
    )
    call.refresh_from_db()
    assert call.status == CallStatus.COMPLETED and call.is_terminal
    assert call.start_timestamp == answered and call.duration == 97
    assert call.call_outcome == outcome and call.transcript_url == "https://example.com/t/1"
    assert statuses(call) == [("Initiating", False), ("Ringing", False), ("Answered", False), ("Completed", False)]
    delivery = WebhookDelivery.objects.get(call=call)
    assert delivery.event == "call.completed" and delivery.status == "pending" and delivery.next_attempt_at


def test_terminal_is_final_and_duplicates_or_late_events_are_ignored(make_call):
    call = make_call()
    record_call_event(call, CallStatus.ANSWERED, "carrier")
    late = record_call_event(call, CallStatus.RINGING, "carrier")
    dup = record_call_event(call, CallStatus.ANSWERED, "carrier")
    record_call_event(call, CallStatus.DECLINE, "carrier")
    after = record_call_event(call, CallStatus.COMPLETED, "carrier")
    assert (late.ignored, late.ignored_reason) == (True, "out of order: call is already Answered")
    assert (dup.ignored, dup.ignored_reason) == (True, "duplicate status")
    assert (after.ignored, after.ignored_reason) == (True, "call is already final (Decline)")
    call.refresh_from_db()
    assert call.status == CallStatus.DECLINE
    assert [s for s, ignored in statuses(call) if not ignored] == ["Initiating", "Answered", "Decline"]
    assert not WebhookDelivery.objects.exists()  # no callback_url


def test_unknown_status_is_refused(make_call):
    with pytest.raises(ValueError, match="unknown call status"):
        record_call_event(make_call(), "Busy", "carrier")


def test_outbox_row_is_written_with_the_terminal_status_or_not_at_all(make_call):
    call = make_call(callback_url="http://127.0.0.1:9/hook")
    with pytest.raises(RuntimeError), transaction.atomic():
        record_call_event(call, CallStatus.SIP_CALL_FAILED, "carrier")
        assert WebhookDelivery.objects.filter(call=call).count() == 1
        raise RuntimeError("the transaction fails after the status was written")
    call.refresh_from_db()
    assert call.status == CallStatus.INITIATING
    assert not WebhookDelivery.objects.exists()


def test_terminal_status_enqueues_the_delivery_on_commit(make_call, django_capture_on_commit_callbacks):
    call = make_call(callback_url="http://127.0.0.1:9/hook")
    with mock.patch.object(queue, "enqueue") as enqueue, django_capture_on_commit_callbacks(execute=True):
        record_call_event(call, CallStatus.TRIGGER_FAILED, "carrier")
    delivery = WebhookDelivery.objects.get()
    enqueue.assert_called_once_with("calls.deliver_webhook", delivery.pk, countdown=None)
    assert delivery.event == "call.failed"


# --- the simulated dialer ---------------------------------------------------------------------------


def run_until_terminal(call: Call, timeout: float = 5.0) -> Call:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dialing.advance_call(call.pk)
        call.refresh_from_db()
        if call.is_terminal:
            return call
        time.sleep(0.02)
    raise AssertionError(f"call still {call.status}")


def test_simulated_completed_call(make_call):
    call = run_until_terminal(make_call())
    assert call.status == CallStatus.COMPLETED
    assert [s for s, ignored in statuses(call) if not ignored] == ["Initiating", "Ringing", "Answered", "Completed"]
    assert call.call_outcome["disposition"] == "completed"
    assert set(call.call_outcome) == {"disposition", "summary", "sentiment", "extracted"}
    # Whole seconds of conversation (about 0.1 s here, more when the machine is slow).
    assert call.duration == round((call.end_timestamp - call.start_timestamp).total_seconds())
    assert call.placed_at is not None and call.dialer_due_at is None
    assert set(CallEvent.objects.filter(call=call).exclude(status="Initiating").values_list("source", flat=True)) == {
        "simulated"
    }


@pytest.mark.parametrize(
    ("outcome", "final", "path"),
    [
        ("declined", CallStatus.DECLINE, ["Initiating", "Ringing", "Decline"]),
        ("sip_failed", CallStatus.SIP_CALL_FAILED, ["Initiating", "SIP Call Failed"]),
        ("trigger_failed", CallStatus.TRIGGER_FAILED, ["Initiating", "Trigger Failed"]),
        ({"declined": 1, "completed": 0}, CallStatus.DECLINE, ["Initiating", "Ringing", "Decline"]),
    ],
)
def test_simulated_outcomes(make_call, trunk, outcome, final, path):
    trunk.dialer_config = {**trunk.dialer_config, "outcome": outcome}
    trunk.save()
    call = run_until_terminal(make_call())
    assert call.status == final
    assert [s for s, ignored in statuses(call) if not ignored] == path


def test_steps_run_only_when_due_and_once(make_call, trunk):
    trunk.dialer_config = {"ring_seconds": 30, "talk_seconds": 30}
    trunk.save()
    call = make_call()
    dialing.advance_call(call.pk)
    dialing.advance_call(call.pk)  # a duplicate message: the next step is not due yet
    call.refresh_from_db()
    assert call.status == CallStatus.RINGING
    assert 29 < (call.dialer_due_at - timezone.now()).total_seconds() <= 30
    assert statuses(call) == [("Initiating", False), ("Ringing", False)]


def test_a_leased_step_is_not_run_twice(make_call):
    call = make_call()
    Call.objects.filter(pk=call.pk).update(dialer_lease_until=timezone.now() + timedelta(seconds=30))
    dialing.advance_call(call.pk)
    call.refresh_from_db()
    assert call.status == CallStatus.INITIATING and call.placed_at is None


def test_redeliveries_are_bounded(make_call, settings):
    """A step whose worker keeps dying runs once plus TASK_MAX_DELIVERIES redeliveries, then the call fails."""
    last_allowed, too_many = make_call(), make_call()
    Call.objects.filter(pk=last_allowed.pk).update(dialer_claims=settings.TASK_MAX_DELIVERIES)
    Call.objects.filter(pk=too_many.pk).update(dialer_claims=settings.TASK_MAX_DELIVERIES + 1)
    dialing.advance_call(last_allowed.pk)
    dialing.advance_call(too_many.pk)
    last_allowed.refresh_from_db()
    too_many.refresh_from_db()
    assert last_allowed.status == CallStatus.RINGING  # the last allowed redelivery still runs the step
    assert too_many.status == CallStatus.TRIGGER_FAILED
    interrupted = settings.TASK_MAX_DELIVERIES + 1
    assert too_many.events.last().detail == {"reason": f"the dialer step was interrupted {interrupted} times"}


def test_a_failing_dialer_fails_the_call(make_call):
    call = make_call()
    with mock.patch("calls.dialers.simulated.SimulatedDialer.place", side_effect=RuntimeError("carrier down")):
        dialing.advance_call(call.pk)
    call.refresh_from_db()
    assert call.status == CallStatus.TRIGGER_FAILED
    assert call.events.last().detail == {"error": "carrier down"}


def test_sweep_dialer_picks_up_lost_steps(make_call):
    lost = make_call()
    make_call()  # just created: its own message still has time
    leased = make_call()
    past = timezone.now() - timedelta(seconds=10)
    Call.objects.filter(pk__in=[lost.pk, leased.pk]).update(dialer_due_at=past)
    Call.objects.filter(pk=leased.pk).update(dialer_lease_until=timezone.now() + timedelta(seconds=30))
    with mock.patch.object(queue, "enqueue") as enqueue:
        assert dialing.sweep_dialer() == 1
    enqueue.assert_called_once_with("calls.advance_call", lost.pk)


def test_sweep_stalled_flags_answered_calls_idle_for_ten_minutes(make_call):
    idle, fresh, ringing = make_call(), make_call(), make_call()
    for call in (idle, fresh):
        record_call_event(call, CallStatus.ANSWERED, "carrier")
    record_call_event(ringing, CallStatus.RINGING, "carrier")
    old = timezone.now() - timedelta(minutes=11)
    Call.objects.filter(pk__in=[idle.pk, ringing.pk]).update(last_updated=old)
    assert dialing.sweep_stalled() == 1
    assert list(Call.objects.filter(stalled_at__isnull=False)) == [idle]
    record_call_event(idle, CallStatus.COMPLETED, "carrier")
    idle.refresh_from_db()
    assert idle.stalled_at is None


def test_a_back_end_that_schedules_nothing_releases_the_step(make_call):
    """A carrier back end that only waits for the carrier's webhooks: the step ends, nothing stays due."""
    call = make_call()
    with mock.patch("calls.dialers.simulated.SimulatedDialer.place", return_value=None):
        dialing.advance_call(call.pk)
    call.refresh_from_db()
    assert call.status == CallStatus.INITIATING and call.placed_at is not None
    assert call.dialer_lease_until is None and call.dialer_due_at is None and call.dialer_claims == 0


def test_periodic_jobs_are_scheduled(settings):
    from config.celery import app

    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["calls.sweep_dialer"] <= 5 and schedule["calls.sweep_webhooks"] <= 10
    assert schedule["calls.sweep_stalled"] <= 60
    app.loader.import_default_modules()
    for name in ("calls.advance_call", "calls.deliver_webhook", *schedule):
        assert name in app.tasks
    assert app.tasks["calls.deliver_webhook"].acks_late and app.tasks["calls.deliver_webhook"].reject_on_worker_lost


def test_a_failing_step_after_placement_is_a_sip_failure(make_call, trunk):
    trunk.dialer_config = {"ring_seconds": 0, "talk_seconds": 30}
    trunk.save()
    call = make_call()
    dialing.advance_call(call.pk)  # placed: Ringing, Answered; Completed due in 30 s
    Call.objects.filter(pk=call.pk).update(dialer_due_at=timezone.now())
    with mock.patch("calls.dialers.simulated.SimulatedDialer.advance", side_effect=RuntimeError("carrier lost")):
        dialing.advance_call(call.pk)
    call.refresh_from_db()
    assert call.status == CallStatus.SIP_CALL_FAILED
