"""A new call's first dialer step: announced by NOTIFY in its admitting statement (PostgreSQL) and sent
by the worker's dispatcher, or published by the web on commit (SQLite, or the dispatcher off)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.db import connection, transaction
from django.utils import timezone

from calls import admission, dialing, dispatcher, services
from calls.models import Call, CallStatus
from tenants import queue
from tests.calls.conftest import call_body
from tests.support.http_servers import free_port
from tests.support.worker import wait_for

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's")


@pytest.fixture
def web_enqueues(monkeypatch) -> list[tuple]:
    """Every task this process sends through tenants.queue (the one way tasks are sent)."""
    sent: list[tuple] = []
    monkeypatch.setattr(queue, "enqueue", lambda *args, **kwargs: sent.append(args) or True)
    return sent


# --- the web side, on either database -------------------------------------------------------------


@pytest.mark.skipif(connection.vendor == "postgresql", reason="SQLite's behaviour")
def test_on_sqlite_the_web_publishes_the_first_step_on_commit(
    tenant, agent, trunk, web_enqueues, django_capture_on_commit_callbacks
):
    assert dispatcher.notify_channel() is None
    with django_capture_on_commit_callbacks(execute=True):
        call = services.trigger_call(tenant, call_body(agent, trunk)).call
    assert web_enqueues == [("calls.advance_call", call.pk)]


@postgresql_only
def test_on_postgresql_the_web_publishes_nothing_for_an_admitted_call(
    tenant, agent, trunk, web_enqueues, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = services.trigger_call(tenant, call_body(agent, trunk))
    assert result.accepted and Call.objects.filter(pk=result.call.pk, status=CallStatus.INITIATING).exists()
    assert web_enqueues == []


@postgresql_only
def test_with_the_dispatcher_off_the_web_publishes_as_on_sqlite(
    settings, tenant, agent, trunk, web_enqueues, django_capture_on_commit_callbacks
):
    settings.CALLS_DISPATCHER = False
    assert dispatcher.notify_channel() is None
    with django_capture_on_commit_callbacks(execute=True):
        call = services.trigger_call(tenant, call_body(agent, trunk)).call
    assert web_enqueues == [("calls.advance_call", call.pk)]


def test_a_worker_runs_a_dispatcher_only_on_postgresql_with_it_on(settings):
    if connection.vendor != "postgresql":
        assert dispatcher.for_worker() is None
        return
    built = dispatcher.for_worker()
    assert built is not None and built.channel == settings.CALLS_DISPATCH_CHANNEL and not built.active
    assert built.params["dbname"] == connection.settings_dict["NAME"] and built.params["autocommit"] is True
    settings.CALLS_DISPATCHER = False
    assert dispatcher.for_worker() is None


def test_a_dispatcher_without_a_database_retries_quietly_and_stops(caplog):
    port = free_port()  # nothing listens there
    params = {"host": "127.0.0.1", "port": port, "dbname": "nowhere", "user": "u", "password": "s3cret-pw-123"}
    one = dispatcher.Dispatcher({**dispatcher.SESSION_DEFAULTS, **params, "autocommit": True}, "calls")
    with caplog.at_level(logging.WARNING, logger="calls.dispatcher"):
        one.start()
        wait_for(lambda: any("lost its database session" in r.getMessage() for r in caplog.records), timeout=10)
        one.stop(timeout=5)
    assert not one.active and not one._thread.is_alive()
    assert "s3cret-pw-123" not in caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert caplog.records[0].error.startswith("OperationalError: ")


# --- dispatchers in this process, on PostgreSQL -----------------------------------------------------


@pytest.fixture
def channel(settings) -> str:
    """A channel of this test's own: no other dispatcher hears what the web announces here."""
    settings.CALLS_DISPATCH_CHANNEL = f"test_calls_{uuid.uuid4().hex[:12]}"
    return settings.CALLS_DISPATCH_CHANNEL


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, tuple]]:
    """What the dispatchers send: (the sending thread's name, the task's arguments)."""
    records: list[tuple[str, tuple]] = []
    lock = threading.Lock()

    def record(*args, **kwargs) -> bool:
        with lock:
            records.append((threading.current_thread().name, args))
        return True

    monkeypatch.setattr(queue, "enqueue", record)
    return records


@pytest.fixture
def make_dispatcher(channel):
    started: list[dispatcher.Dispatcher] = []

    def make(name: str = "dispatcher-a", *, wait: bool = True) -> dispatcher.Dispatcher:
        one = dispatcher.Dispatcher(
            dispatcher.connection_params(), channel, retry_seconds=0.2, poll_seconds=0.1, name=name
        )
        one.start()
        started.append(one)
        if wait:
            assert one.wait_active(10), "the dispatcher never listened"
        return one

    yield make
    for one in started:
        one.stop()


def _committed_call(tenant, agent, trunk) -> Call:
    return services.trigger_call(tenant, call_body(agent, trunk)).call


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_committed_admission_is_sent_by_the_dispatcher(tenant, agent, trunk, sent, make_dispatcher):
    make_dispatcher("dispatcher-a")
    call = _committed_call(tenant, agent, trunk)
    wait_for(lambda: sent, timeout=10)
    assert sent == [("dispatcher-a", ("calls.advance_call", call.pk))]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_admission_sends_nothing(tenant, agent, trunk, sent, make_dispatcher):
    one = make_dispatcher()
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = services.trigger_call(tenant, call_body(agent, trunk)).call
        raise RuntimeError("the caller's transaction fails after the admission")
    assert not Call.objects.filter(pk=rolled_back.pk).exists()
    committed = _committed_call(tenant, agent, trunk)  # announced after the rolled-back one
    wait_for(lambda: sent, timeout=10)
    assert [args for _, args in sent] == [("calls.advance_call", committed.pk)]
    assert one.dispatched == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_call_admitted_under_the_trunk_lock_is_announced_in_its_transaction(
    tenant, agent, trunk, sent, make_dispatcher, monkeypatch
):
    make_dispatcher()
    monkeypatch.setattr(admission, "admit_call", lambda *args: False)  # as when the one statement did not admit
    call = _committed_call(tenant, agent, trunk)
    assert call.status == CallStatus.INITIATING
    wait_for(lambda: sent, timeout=10)
    assert [args for _, args in sent] == [("calls.advance_call", call.pk)]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_notification_that_is_not_a_call_id_is_ignored(tenant, agent, trunk, sent, make_dispatcher, channel):
    one = make_dispatcher()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, "'; DROP TABLE calls_call; --"])
    call = _committed_call(tenant, agent, trunk)
    wait_for(lambda: sent, timeout=10)
    assert [args for _, args in sent] == [("calls.advance_call", call.pk)]
    assert one.active and one.dispatched == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_one_dispatcher_per_database_is_active_and_another_takes_over_when_it_stops(
    tenant, agent, trunk, sent, make_dispatcher
):
    first = make_dispatcher("dispatcher-a")
    second = make_dispatcher("dispatcher-b", wait=False)
    assert not second.wait_active(1.0)  # it tried the lock about five times
    call = _committed_call(tenant, agent, trunk)
    wait_for(lambda: sent, timeout=10)
    assert sent == [("dispatcher-a", ("calls.advance_call", call.pk))]

    first.stop()
    assert not first.active
    assert second.wait_active(5), "the waiting dispatcher never took over"
    later = _committed_call(tenant, agent, trunk)
    wait_for(lambda: len(sent) == 2, timeout=10)
    assert sent[1] == ("dispatcher-b", ("calls.advance_call", later.pk))
    assert (first.dispatched, second.dispatched) == (1, 1)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_reconnects_when_its_session_is_killed(tenant, agent, trunk, sent, make_dispatcher, channel):
    one = make_dispatcher()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s AND query = %s",
            [dispatcher.SESSION_DEFAULTS["application_name"], f'LISTEN "{channel}"'],
        )
        assert cursor.fetchone() == (True,)
    wait_for(lambda: not one.active, timeout=10)
    lost = _committed_call(tenant, agent, trunk)  # while it reconnects: nobody hears this one
    assert one.wait_active(10), "the dispatcher never reconnected"
    call = _committed_call(tenant, agent, trunk)
    wait_for(lambda: sent, timeout=10)
    assert [args for _, args in sent] == [("calls.advance_call", call.pk)]

    # The call announced during the gap is still due: the dialer sweep sends it once it is overdue.
    Call.objects.filter(pk__in=[lost.pk, call.pk]).update(dialer_due_at=timezone.now() - timedelta(seconds=3))
    Call.objects.filter(pk=call.pk).update(dialer_lease_until=timezone.now() + timedelta(seconds=30))  # in work
    assert dialing.sweep_dialer() == 1
    assert [args for _, args in sent][-1] == ("calls.advance_call", lost.pk)


# --- a real worker, on PostgreSQL -----------------------------------------------------------------


@pytest.fixture
def web_publishes():
    """Every message this (the web's) process hands to the broker."""
    published: list[str] = []

    def record(sender=None, **kwargs) -> None:
        published.append(str(sender))

    before_task_publish.connect(record, weak=False)
    yield published
    before_task_publish.disconnect(record)


@postgresql_only
@pytest.mark.worker
def test_a_call_posted_through_the_api_is_placed_by_the_workers_dispatcher(
    calls_worker, member, agent, trunk, web_publishes
):
    response = member.post("/integration/v1/calls", call_body(agent, trunk), format="json")
    assert response.status_code == 201
    call_id = response.json()["call_id"]

    wait_for(lambda: Call.objects.get(pk=call_id).status == CallStatus.COMPLETED, timeout=30)
    assert web_publishes == []  # the worker's dispatcher sent the first step, then the steps their next
    assert [e.status for e in Call.objects.get(pk=call_id).events.filter(ignored=False)] == [
        "Initiating",
        "Ringing",
        "Answered",
        "Completed",
    ]
    assert "call dispatcher listening" in calls_worker.log()

    calls_worker.stop(graceful=True)  # a warm shutdown closes the dispatcher's session: its lock is free
    assert calls_worker.process.returncode == 0, calls_worker.log()[-4000:]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [dispatcher.lock_key(dispatcher.notify_channel())])
        assert cursor.fetchone() == (True,)
        cursor.execute("SELECT pg_advisory_unlock_all()")


@postgresql_only
@pytest.mark.worker
def test_a_call_whose_notification_was_lost_is_placed_after_the_sweep(
    calls_worker, settings, member, agent, trunk, web_publishes
):
    settings.CALLS_DISPATCH_CHANNEL = "nobody_listens_here"  # announced where no dispatcher listens
    response = member.post("/integration/v1/calls", call_body(agent, trunk), format="json")
    assert response.status_code == 201
    call = Call.objects.get(pk=response.json()["call_id"])
    time.sleep(1.0)
    assert Call.objects.get(pk=call.pk).placed_at is None  # nobody sent its first step

    Call.objects.filter(pk=call.pk).update(dialer_due_at=timezone.now() - timedelta(seconds=3))
    assert dialing.sweep_dialer() == 1  # what beat runs every 2 s
    assert web_publishes == ["calls.advance_call"]  # the sweep's message, and only it
    wait_for(lambda: Call.objects.get(pk=call.pk).status == CallStatus.COMPLETED, timeout=30)
