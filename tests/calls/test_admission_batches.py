"""Calls that queue for their trunk's turn in one process go to PostgreSQL in one statement: the trunk
admits all of them or none, and when it does not take them all (a limit, one call's own checks or
values), each is decided by itself, exactly as if they had come one after another. PostgreSQL only
(the one-statement admission)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.db import connection

from calls import admission, services
from calls.models import Call, CallEvent, CallStatus, DoNotCallEntry, SipTrunk
from calls.validation import CallRequestError
from tenants import db
from tests.calls.conftest import PHONE, call_body

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement admission is PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]


def _queued(trunk: SipTrunk, requests: list[Callable[[], Any]]) -> list[Any]:
    """Run `requests` in threads of their own that all queue for `trunk`'s turn while this thread holds
    it, then let them go; each one's result, or the error it raised, in order."""
    results: list[Any] = [None] * len(requests)

    def run(number: int) -> None:
        from django.db import connection as thread_connection

        try:
            results[number] = requests[number]()
        except Exception as error:  # the test looks at it
            results[number] = error
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=run, args=(number,)) for number in range(len(requests))]
    with admission._TURNS.hold(trunk.pk):
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while sum(len(queue) for queue in admission._QUEUES.values()) < len(requests):
            assert time.monotonic() < deadline, "the requests did not queue for the trunk's turn"
            time.sleep(0.005)
    for thread in threads:
        thread.join(10)
    return results


@pytest.fixture
def statements(monkeypatch) -> list[int]:
    """How many calls each admission statement carried."""
    sent: list[int] = []
    execute = admission._execute

    def counted(database, sql, params, **kwargs):
        sent.append(params["count"])
        return execute(database, sql, params, **kwargs)

    monkeypatch.setattr(admission, "_execute", counted)
    return sent


def _written(trunk: SipTrunk) -> tuple[int, int, int, int]:
    """Calls on the trunk, their events, the trunk's live count and the starts its ring counts."""
    trunk.refresh_from_db()
    calls = Call.objects.filter(sip_trunk=trunk)
    events = CallEvent.objects.filter(call__sip_trunk=trunk).count()
    return calls.count(), events, trunk.live_calls, sum(n for _, n in trunk.recent_starts)


def test_the_calls_queued_for_a_trunk_are_admitted_in_one_statement(tenant, agent, make_trunk, statements):
    trunk = make_trunk(tenant, max_channels=100, max_cps=100)
    results = _queued(trunk, [lambda: services.trigger_call(tenant, call_body(agent, trunk))] * 6)
    assert all(result.accepted for result in results)
    assert statements == [6]
    calls = list(Call.objects.filter(sip_trunk=trunk))
    assert {call.pk for call in calls} == {result.call.pk for result in results}
    # one start for all of them, as the API reported each; each its own first event
    assert len({call.started_at for call in calls}) == 1
    assert {result.call.started_at for result in results} == {calls[0].started_at}
    assert all(call.status == CallStatus.INITIATING for call in calls)
    assert _written(trunk) == (6, 6, 6, 6)


def test_a_batch_the_trunk_cannot_take_whole_is_decided_call_by_call(tenant, agent, make_trunk, statements):
    trunk = make_trunk(tenant, max_channels=4, max_cps=100)
    results = _queued(trunk, [lambda: services.trigger_call(tenant, call_body(agent, trunk))] * 6)
    assert sorted(result.accepted for result in results) == [False] * 2 + [True] * 4
    assert {result.message for result in results if not result.accepted} == {admission.MAX_CHANNELS_MESSAGE}
    # the six together, then each by itself: four admitted, the last two refused under the lock
    assert statements == [6, 1, 1, 1, 1, 1, 1]
    trunk.refresh_from_db()
    assert trunk.live_calls == 4
    assert Call.objects.filter(sip_trunk=trunk, status=CallStatus.INITIATING).count() == 4


def test_max_cps_holds_for_a_batch(tenant, agent, make_trunk, statements):
    trunk = make_trunk(tenant, max_channels=100, max_cps=3)
    results = _queued(trunk, [lambda: services.trigger_call(tenant, call_body(agent, trunk))] * 5)
    assert sorted(result.accepted for result in results) == [False] * 2 + [True] * 3
    assert {(r.message, r.retry_after) for r in results if not r.accepted} == {(admission.MAX_CPS_MESSAGE, 1)}
    trunk.refresh_from_db()
    assert sum(n for _, n in trunk.recent_starts) == 3 and trunk.live_calls == 3


def test_a_call_that_fails_its_checks_holds_back_no_other(
    tenant, other_tenant, agent, make_agent, make_trunk, statements
):
    trunk = make_trunk(tenant, max_channels=100, max_cps=100)
    DoNotCallEntry.objects.create(tenant=tenant, phone_number="+14155550199")
    paused = make_agent(tenant, name="Paused", agent_code="paused", status="inactive")
    foreign_agent = make_agent(other_tenant)
    good = lambda: services.trigger_call(tenant, call_body(agent, trunk))  # noqa: E731
    results = _queued(
        trunk,
        [
            good,
            lambda: services.trigger_call(tenant, call_body(agent, trunk, phone_number="+14155550199")),
            good,
            lambda: services.trigger_call(tenant, call_body(paused, trunk)),
            # another tenant naming this trunk: never admitted to it, and not sent with its calls
            lambda: services.trigger_call(other_tenant, call_body(foreign_agent, trunk)),
            good,
        ],
    )
    assert [getattr(result, "accepted", None) for result in results] == [True, None, True, None, None, True]
    assert all(isinstance(results[number], CallRequestError) for number in (1, 3, 4))
    assert "SIP trunk not found" in str(results[4])
    # the tenant's five together (refused whole), then each by itself; the other tenant's by itself
    assert sorted(statements) == [1] * 6 + [5]
    assert _written(trunk) == (3, 3, 3, 3)


def test_a_repeated_idempotency_key_in_one_batch_gives_one_call(tenant, agent, make_trunk, statements):
    trunk = make_trunk(tenant, max_channels=100, max_cps=100)
    body = call_body(agent, trunk)
    keyed = lambda: services.trigger_call(tenant, body, idempotency_key="order-1")  # noqa: E731
    results = _queued(trunk, [keyed, lambda: services.trigger_call(tenant, call_body(agent, trunk)), keyed])
    assert all(result.accepted for result in results)
    assert results[0].call.pk == results[2].call.pk and results[0].replayed != results[2].replayed
    assert statements[0] == 3  # refused whole for the key, then each by itself
    assert _written(trunk) == (2, 2, 2, 2)


def test_a_batch_whose_connection_was_lost_after_it_committed_is_not_admitted_twice(
    tenant, agent, make_trunk, monkeypatch
):
    trunk = make_trunk(tenant, max_channels=100, max_cps=100)
    cursor_class = db._preparing_cursor_class()
    fetchone = cursor_class.fetchone
    lost: list[bool] = []
    guard = threading.Lock()

    def reply_lost(self):
        with guard:
            first = not lost
            lost.append(True)
        if not first:
            return fetchone(self)
        fetchone(self)  # the server answered …
        self.connection.close()  # … and the connection went before the answer was read
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(cursor_class, "fetchone", reply_lost)
    results = _queued(trunk, [lambda: services.trigger_call(tenant, call_body(agent, trunk))] * 4)
    assert lost[:1] == [True] and all(result.accepted for result in results)
    for result in results:
        assert Call.objects.get(pk=result.call.pk).started_at == result.call.started_at
    assert _written(trunk) == (4, 4, 4, 4)


def test_numbers_and_metadata_reach_each_call_as_its_request_gave_them(tenant, agent, make_trunk):
    trunk = make_trunk(tenant, max_channels=100, max_cps=100)
    numbers = ["+14155550001", "+14155550002", PHONE]
    requests = [
        lambda number=number: services.trigger_call(
            tenant,
            call_body(
                agent,
                trunk,
                phone_number=number,
                metadata={"amount_due": f'{number} ünïcode "quoted"', "due_date": "2026-07-01", "n": [1, 2.5, None]},
                callback_url=f"https://example.com/cb/{number[-1]}",
            ),
            callback_fields={"row": int(number[-1])},
        )
        for number in numbers
    ]
    results = _queued(trunk, requests)
    for number, result in zip(numbers, results, strict=True):
        call = Call.objects.get(pk=result.call.pk)
        assert call.phone_number == number
        assert call.metadata == {
            "amount_due": f'{number} ünïcode "quoted"',
            "due_date": "2026-07-01",
            "n": [1, 2.5, None],
        }
        assert call.callback_url == f"https://example.com/cb/{number[-1]}"
        assert call.callback_fields == {"row": int(number[-1])}
        assert call.created_at == result.call.created_at and call.dialer_due_at == result.call.dialer_due_at
        assert call.tenant_id == tenant.pk and call.agent_id == agent.pk


def test_an_error_that_keeps_the_connection_is_raised_for_every_call_of_the_batch(
    tenant, agent, make_trunk, statements
):
    """A statement timeout (the trunk's row held by another session) is each call's error, and none of
    them is sent again by itself to wait out the same timeout."""
    from django.db import OperationalError

    trunk = make_trunk(tenant, max_channels=100, max_cps=100)

    def with_timeout():
        from django.db import connection as thread_connection

        with thread_connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 300")
        return services.trigger_call(tenant, call_body(agent, trunk))

    with psycopg.connect(**connection.get_connection_params()) as holder:
        holder.execute("SELECT 1 FROM calls_siptrunk WHERE id = %s FOR UPDATE", [trunk.pk])
        results = _queued(trunk, [with_timeout] * 3)
        holder.rollback()
    assert all(isinstance(result, OperationalError) for result in results)
    assert len({id(result) for result in results}) == 3  # each thread raised its own copy
    assert statements == [3]
    assert _written(trunk) == (0, 0, 0, 0)


def test_an_unexpected_error_while_sending_reaches_every_call_of_the_batch(tenant, agent, make_trunk, monkeypatch):
    """No call's thread is left waiting for an outcome, and the queue is left empty."""
    trunk = make_trunk(tenant, max_channels=100, max_cps=100)

    def broken(*args, **kwargs):
        raise RuntimeError("the driver broke")

    monkeypatch.setattr(admission, "_execute", broken)
    results = _queued(trunk, [lambda: services.trigger_call(tenant, call_body(agent, trunk))] * 3)
    assert all(isinstance(result, RuntimeError) for result in results)
    assert admission._QUEUES == {}
    assert _written(trunk) == (0, 0, 0, 0)
