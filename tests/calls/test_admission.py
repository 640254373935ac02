"""Admission counters on the trunk row (calls.admission): kept exact by the transactions that admit and
end calls, independent of how many calls are live, repaired by the periodic reconciliation, and exact
under concurrency across processes with thousands of live calls (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls import admission, dialing, services
from calls.events import record_call_event
from calls.models import LIVE_STATUSES, Call, CallStatus, SipTrunk
from rules.models import Conversation
from tests.calls.conftest import PHONE, age_starts, call_body, max_starts_in_one_second, start_buckets
from tests.support.concurrency import run_processes


def _live_calls(trunk: SipTrunk, agent, count: int) -> None:
    """`count` answered calls on `trunk`, counted on the trunk as admissions would have."""
    now = timezone.now()
    Call.objects.bulk_create(
        [
            Call(tenant=trunk.tenant, agent=agent, sip_trunk=trunk, phone_number=PHONE,
                 status=CallStatus.ANSWERED, started_at=now - timedelta(seconds=5), last_updated=now)
            for _ in range(count)
        ],
        batch_size=1000,
    )  # fmt: skip
    admission.reconcile_trunk(trunk.pk)


def _counters(trunk: SipTrunk) -> tuple[int, int]:
    trunk = SipTrunk.objects.get(pk=trunk.pk)
    return trunk.live_calls, Call.objects.filter(sip_trunk=trunk, status__in=LIVE_STATUSES).count()


@pytest.fixture
def full_trunk(tenant, agent, make_trunk):
    return make_trunk(tenant, max_channels=2, max_cps=100)


def test_admitting_and_ending_calls_keep_the_counter_exact(tenant, agent, full_trunk):
    first = services.trigger_call(tenant, call_body(agent, full_trunk))
    second = services.trigger_call(tenant, call_body(agent, full_trunk))
    refused = services.trigger_call(tenant, call_body(agent, full_trunk))
    assert (first.accepted, second.accepted, refused.accepted) == (True, True, False)
    assert refused.message == admission.MAX_CHANNELS_MESSAGE
    assert _counters(full_trunk) == (2, 2)
    # an ending frees its channel once, however often the carrier repeats it
    record_call_event(first.call, CallStatus.COMPLETED, "carrier")
    record_call_event(first.call, CallStatus.COMPLETED, "carrier")
    record_call_event(first.call, CallStatus.DECLINE, "carrier")
    assert _counters(full_trunk) == (1, 1)
    assert services.trigger_call(tenant, call_body(agent, full_trunk)).accepted


def test_a_refused_call_leaves_no_conversation_and_no_count(tenant, agent, make_trunk):
    trunk = make_trunk(tenant, max_channels=1, max_cps=100)
    accepted = services.trigger_call(tenant, call_body(agent, trunk))
    refused = services.trigger_call(tenant, call_body(agent, trunk))
    dialing.advance_call(accepted.call.pk)  # the first dialer step gives the accepted call its conversation
    assert not refused.accepted and refused.call.conversation_id is None
    assert Conversation.objects.count() == 1
    assert _counters(trunk) == (1, 1)


def test_admission_writes_only_the_call_and_its_event(tenant, agent, make_trunk):
    trunk = make_trunk(tenant, max_channels=10, max_cps=100)
    result = services.trigger_call(tenant, call_body(agent, trunk))
    call = Call.objects.get(pk=result.call.pk)
    assert call.conversation_id is None and Conversation.objects.count() == 0
    assert list(call.events.values_list("status", "source")) == [(CallStatus.INITIATING, "api")]
    assert call.started_at == result.call.started_at and call.started_at >= call.created_at
    assert _counters(trunk) == (1, 1)


def test_an_admitted_call_and_its_event_read_back_as_the_orm_would_have_written_them(tenant, agent, make_trunk):
    trunk = make_trunk(tenant, max_channels=10, max_cps=100)
    result = services.trigger_call(tenant, call_body(agent, trunk), idempotency_key="k-1")
    call = Call.objects.get(pk=result.call.pk)
    written = {f.attname: getattr(call, f.attname) for f in Call._meta.concrete_fields}
    returned = {f.attname: getattr(result.call, f.attname) for f in Call._meta.concrete_fields}
    assert written == returned  # every field as the caller built the call (defaults included)
    assert (written["rejection_reason"], written["dialer_state"], written["dialer_claims"]) == ("", {}, 0)
    assert written["idempotency_key"] == "k-1" and written["dialer_due_at"] == written["created_at"]
    event = call.events.get()
    assert (event.tenant_id, event.status, event.source, event.ignored, event.ignored_reason, event.detail) == (
        tenant.pk,
        CallStatus.INITIATING,
        "api",
        False,
        "",
        {},
    )
    assert event.occurred_at == call.created_at <= event.recorded_at


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one admitting statement is PostgreSQL's")
def test_a_call_that_is_not_new_is_not_admitted_by_the_statement(tenant, agent, make_trunk):
    # the statement writes every field it is not given as its default: a call carrying another value
    # is refused loudly rather than written without it
    trunk = make_trunk(tenant, max_channels=10, max_cps=100)
    now = timezone.now()
    call = Call(tenant=tenant, agent=agent, sip_trunk=trunk, phone_number=PHONE, created_at=now, rejection_reason="x")
    with pytest.raises(ValueError, match="rejection_reason"):
        admission.admit_call(call, now)
    assert not Call.objects.exists()


def test_the_start_ring_refuses_past_max_cps_with_the_time_until_a_start_leaves_it(tenant, agent, make_trunk):
    trunk = make_trunk(tenant, max_channels=100, max_cps=2)
    assert all(services.trigger_call(tenant, call_body(agent, trunk)).accepted for _ in range(2))
    refused = services.trigger_call(tenant, call_body(agent, trunk))
    assert (refused.accepted, refused.message, refused.retry_after) == (False, admission.MAX_CPS_MESSAGE, 1)
    ring = SipTrunk.objects.get(pk=trunk.pk).recent_starts
    assert sum(n for _, n in ring) == 2 and ring == sorted(ring)
    # once the starts are a second old, a start is admitted; they leave the ring, which counts only the
    # starts of the last second
    age_starts(trunk, 1.01)
    admitted = services.trigger_call(tenant, call_body(agent, trunk))
    assert admitted.accepted
    trunk.refresh_from_db()
    assert trunk.recent_starts == start_buckets([admitted.call.started_at.timestamp()])
    assert trunk.last_start == admitted.call.started_at.timestamp()


def test_the_ring_sheds_starts_that_left_the_window_as_calls_are_admitted(tenant, agent, make_trunk):
    # given a ring whose starts all left the window, over six hundredths of a second
    trunk = make_trunk(tenant, max_channels=100, max_cps=3)
    old = timezone.now().timestamp() - 5
    SipTrunk.objects.filter(pk=trunk.pk).update(recent_starts=start_buckets(old + n / 100 for n in range(6)))
    # when three calls are admitted
    starts, sizes = [], []
    for _ in range(3):
        result = services.trigger_call(tenant, call_body(agent, trunk))
        assert result.accepted
        starts.append(result.call.started_at.timestamp())
        sizes.append(len(SipTrunk.objects.get(pk=trunk.pk).recent_starts))
    # then the stale pairs are gone (up to two per admission, or all at once under the lock), the ring
    # never grew, and it counts exactly the three starts: a fourth within the second is refused
    assert max(sizes) < 6
    assert SipTrunk.objects.get(pk=trunk.pk).recent_starts == start_buckets(starts)
    refused = services.trigger_call(tenant, call_body(agent, trunk))
    assert (refused.accepted, refused.message) == (False, admission.MAX_CPS_MESSAGE)


def test_the_ring_stays_small_however_many_calls_start_in_a_second(tenant, agent, make_trunk):
    # given a trunk whose last second saw 5,000 starts (fifty in every hundredth)
    trunk = make_trunk(tenant, max_channels=100_000, max_cps=1000)
    now = timezone.now().timestamp()
    starts = [now - 0.999 + n / 5000 for n in range(5000)]
    SipTrunk.objects.filter(pk=trunk.pk).update(recent_starts=start_buckets(starts), last_start=starts[-1])
    # then the ring holds one pair per hundredth, and the window is full: max_cps is refused
    assert len(SipTrunk.objects.get(pk=trunk.pk).recent_starts) <= 101
    refused = services.trigger_call(tenant, call_body(agent, trunk))
    assert (refused.accepted, refused.message, refused.retry_after) == (False, admission.MAX_CPS_MESSAGE, 1)
    assert SipTrunk.objects.get(pk=trunk.pk).recent_starts == start_buckets(starts)


def test_admission_reads_no_calls_however_many_are_live(tenant, agent, make_trunk):
    # given a trunk with 3,000 live calls
    trunk = make_trunk(tenant, max_channels=5000, max_cps=100)
    _live_calls(trunk, agent, 3000)
    # when a call is admitted
    with CaptureQueriesContext(connection) as queries:
        assert services.trigger_call(tenant, call_body(agent, trunk)).accepted
    # then no query read or counted the trunk's calls
    assert not [q for q in queries.captured_queries if q["sql"].startswith("SELECT") and '"calls_call"' in q["sql"]]
    assert _counters(trunk) == (3001, 3001)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one admitting statement is PostgreSQL's")
def test_an_admission_takes_the_trunk_in_one_statement(tenant, agent, make_trunk):
    trunk = make_trunk(tenant, max_channels=10, max_cps=100)
    services.trigger_call(tenant, call_body(agent, trunk))
    with CaptureQueriesContext(connection) as queries:
        assert services.trigger_call(tenant, call_body(agent, trunk)).accepted
    control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT")
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(control)]
    # one statement: the agent, its metadata keys and the do-not-call list checked, the trunk's
    # conditional UPDATE … RETURNING, and the call and its event inserted
    assert len(statements) == 1 and "FOR UPDATE" not in statements[0]
    assert "UPDATE calls_siptrunk" in statements[0] and "RETURNING" in statements[0]
    assert "FROM calls_agent agent" in statements[0] and "calls_donotcallentry" in statements[0]
    assert 'INSERT INTO "calls_call"' in statements[0] and 'INSERT INTO "calls_callevent"' in statements[0]
    assert _counters(trunk) == (2, 2)


def test_without_the_one_statement_path_the_locked_row_decides_alike(tenant, agent, make_trunk, monkeypatch):
    # as on SQLite (or a statement that matched nothing): every call is decided under the trunk's row
    # lock, with the same counters, ring and refusals
    monkeypatch.setattr(admission, "admit_call", lambda call, now: False)
    trunk = make_trunk(tenant, max_channels=3, max_cps=2)
    first, second = (services.trigger_call(tenant, call_body(agent, trunk)) for _ in range(2))
    refused = services.trigger_call(tenant, call_body(agent, trunk))
    assert (first.accepted, second.accepted) == (True, True)
    assert (refused.accepted, refused.message, refused.retry_after) == (False, admission.MAX_CPS_MESSAGE, 1)
    ring = SipTrunk.objects.get(pk=trunk.pk).recent_starts
    assert ring == start_buckets([first.call.started_at.timestamp(), second.call.started_at.timestamp()])
    age_starts(trunk, 1.01)
    assert services.trigger_call(tenant, call_body(agent, trunk)).accepted
    full = services.trigger_call(tenant, call_body(agent, trunk))
    assert (full.accepted, full.message) == (False, admission.MAX_CHANNELS_MESSAGE)
    assert _counters(trunk) == (3, 3)


def test_editing_a_trunk_never_writes_back_stale_counters(tenant, agent, make_trunk):
    trunk = make_trunk(tenant, max_channels=10, max_cps=100)
    stale = SipTrunk.objects.get(pk=trunk.pk)  # read before the calls were admitted (admin form, API)
    for _ in range(3):
        services.trigger_call(tenant, call_body(agent, trunk))
    stale.name = "Renamed"
    stale.save()
    trunk.refresh_from_db()
    assert trunk.name == "Renamed" and trunk.live_calls == 3 and sum(n for _, n in trunk.recent_starts) == 3
    assert trunk.last_start is not None


def test_reconciliation_repairs_counts_changed_outside_admission(tenant, agent, make_trunk):
    trunk = make_trunk(tenant, max_channels=10, max_cps=100)
    calls = [services.trigger_call(tenant, call_body(agent, trunk)).call for _ in range(3)]
    Call.objects.filter(pk=calls[0].pk).delete()  # a live call removed by hand
    SipTrunk.objects.filter(pk=trunk.pk).update(live_calls=9)  # and a counter edited by hand
    untouched = make_trunk(tenant, name="Other", max_channels=10, max_cps=100)
    assert admission.reconcile_trunks() == 1
    assert _counters(trunk) == (2, 2) and _counters(untouched) == (0, 0)
    assert admission.reconcile_trunks() == 0
    assert settings.CELERY_BEAT_SCHEDULE["calls-reconcile-trunks"]["task"] == "calls.reconcile_trunks"


ADMIT_AND_END = """
from concurrent.futures import ThreadPoolExecutor
from django.db import connections
from calls import services
from calls.events import record_call_event
from calls.models import Call, CallStatus
from tenants.models import Tenant

tenant = Tenant.objects.get(pk="{tenant}")
body = {body}
to_end = {to_end}

def admit(_):
    try:
        return services.trigger_call(tenant, body).accepted
    finally:
        connections.close_all()

def end(call_id):
    try:
        return not record_call_event(call_id, CallStatus.COMPLETED, "carrier").ignored
    finally:
        connections.close_all()

time.sleep(max(0.0, START_AT - time.time()))
with ThreadPoolExecutor(4) as pool:
    ended = list(pool.map(end, to_end))
    admitted = list(pool.map(admit, range({attempts})))
print(json.dumps({{"admitted": sum(admitted), "ended": sum(ended)}}))
"""


@pytest.mark.django_db(transaction=True)
def test_admission_is_exact_under_concurrency_with_thousands_of_live_calls(tenant, agent, make_trunk):
    # given a trunk with 3,000 live calls, 8 channels free, and 3 processes that end 4 calls each
    # while they try 10 admissions each
    trunk = make_trunk(tenant, max_channels=3008, max_cps=1000)
    _live_calls(trunk, agent, 3000)
    ending = [str(pk) for pk in Call.objects.filter(sip_trunk=trunk).values_list("pk", flat=True)[:12]]
    code = [
        ADMIT_AND_END.format(tenant=tenant.pk, body=call_body(agent, trunk), to_end=ending[i::3], attempts=10)
        for i in range(3)
    ]
    # when they run at once (each process ends its calls, then admits: 8 + 12 channels for 30 tries)
    start_at = time.time() + 4
    outcomes = _run_together(code, start_at)
    # then exactly the free channels (8 + the 12 ended) were given, and the counter matches the calls
    assert sum(o["ended"] for o in outcomes) == 12
    assert sum(o["admitted"] for o in outcomes) == 20
    assert _counters(trunk) == (3008, 3008)
    refused = Call.objects.filter(sip_trunk=trunk, status=CallStatus.REJECTED_CAPACITY)
    assert refused.count() == 10 and set(refused.values_list("rejection_reason", flat=True)) == {
        admission.MAX_CHANNELS_MESSAGE
    }


@pytest.mark.django_db(transaction=True)
def test_max_cps_is_exact_under_concurrency_with_thousands_of_live_calls(tenant, agent, make_trunk):
    # given a trunk with 3,000 live calls and room for many more, but 4 starts a second, and 3
    # processes of 4 threads that try 10 admissions each at once
    trunk = make_trunk(tenant, max_channels=10_000, max_cps=4)
    _live_calls(trunk, agent, 3000)
    code = ADMIT_AND_END.format(tenant=tenant.pk, body=call_body(agent, trunk), to_end=[], attempts=10)
    # when they run together
    outcomes = _run_together([code] * 3, time.time() + 4)
    # then no one-second window holds more than 4 starts, the first 4 always got through, every other
    # try was refused for max_cps, and the counter and the ring match the calls
    admitted = sum(o["admitted"] for o in outcomes)
    started = list(Call.objects.filter(sip_trunk=trunk, status=CallStatus.INITIATING))
    assert len(started) == admitted >= 4
    assert max_starts_in_one_second(started) <= 4
    refused = Call.objects.filter(sip_trunk=trunk, status=CallStatus.REJECTED_CAPACITY)
    assert refused.count() == 30 - admitted
    assert set(refused.values_list("rejection_reason", flat=True)) == {admission.MAX_CPS_MESSAGE}
    assert _counters(trunk) == (3000 + admitted, 3000 + admitted)
    trunk.refresh_from_db()
    last = sorted(c.started_at.timestamp() for c in started)
    assert trunk.last_start == last[-1]
    # the ring counts the starts of the last second (pairs that left it may linger until dropped)
    in_window = [[c, n] for c, n in trunk.recent_starts if c / 100 > last[-1] - 1]
    assert in_window == [[c, n] for c, n in start_buckets(last) if c / 100 > last[-1] - 1]


@pytest.mark.django_db(transaction=True)
def test_a_call_whose_task_was_never_sent_is_placed_by_the_sweep(tenant, agent, make_trunk, monkeypatch):
    """Committed, then its wake-up was lost — the broker refused the task or the process died before
    sending it (SQLite), or no dispatcher heard its NOTIFY (PostgreSQL: none runs here): the call is not
    lost — the dialer sweep sends its first step once it is a few seconds overdue."""
    from calls import dialing
    from tenants import queue
    from tenants import queue as shared_queue

    trunk = make_trunk(tenant, max_channels=10, max_cps=100)
    sent: list[tuple] = []

    def broker_down(task_name):
        raise ConnectionError("broker down")

    monkeypatch.setattr(shared_queue, "_task", broker_down)
    call = services.trigger_call(tenant, call_body(agent, trunk)).call
    assert Call.objects.get(pk=call.pk).status == CallStatus.INITIATING
    assert dialing.sweep_dialer() == 0  # not overdue yet: its own message may still arrive
    Call.objects.filter(pk=call.pk).update(dialer_due_at=timezone.now() - timedelta(seconds=3))
    monkeypatch.setattr(queue, "enqueue", lambda *args, **kwargs: sent.append(args) or True)
    assert dialing.sweep_dialer() == 1
    assert sent == [("calls.advance_call", call.pk)]


def _run_together(codes: list[str], start_at: float) -> list[dict]:
    """One process per code, all released at `start_at`."""
    results: list = [None] * len(codes)

    def run(i: int) -> None:
        results[i] = run_processes(1, codes[i], start_at=start_at, timeout=180)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(codes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results), "an admitting process failed"
    return results
