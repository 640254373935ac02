"""Call admission outside a transaction sends its one statement without the connection's health check
(a `SELECT 1` round trip before a request's first query) and recovers from a lost connection itself:
the call's id is ours, so its row says whether the statement committed before the connection went;
PostgreSQL only (the one-statement admission)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError, connection

from calls import services
from calls.models import Call, CallEvent, SipTrunk
from tenants import db
from tests.calls.conftest import call_body

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement admission is PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]


def _new_request() -> None:
    """What Django does when a request starts: the kept connection is to be health-checked again."""
    assert connection.health_check_enabled  # CONN_HEALTH_CHECKS, as deployed on PostgreSQL
    connection.ensure_connection()
    connection.close_if_unusable_or_obsolete()
    assert connection.health_check_done is False


def _written(trunk: SipTrunk) -> tuple[int, int, int]:
    trunk.refresh_from_db()
    return Call.objects.filter(sip_trunk=trunk).count(), CallEvent.objects.count(), trunk.live_calls


def test_an_admission_needs_no_health_check_round_trip(tenant, agent, trunk, monkeypatch):
    checks: list[bool] = []
    is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(True) or is_usable())
    _new_request()
    result = services.trigger_call(tenant, call_body(agent, trunk))
    assert result.accepted and checks == []
    assert connection.health_check_done  # the statement went through: no check for the rest of the request
    assert _written(trunk) == (1, 1, 1)


def test_a_connection_the_server_closed_is_replaced_and_the_call_admitted_once(tenant, agent, trunk):
    _new_request()
    pid = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)

    result = services.trigger_call(tenant, call_body(agent, trunk))
    assert result.accepted and result.call.started_at is not None
    assert connection.connection.info.backend_pid != pid
    assert _written(trunk) == (1, 1, 1)


def test_a_call_committed_before_the_connection_was_lost_is_not_admitted_twice(tenant, agent, trunk, monkeypatch):
    """The statement ran and committed, then the reply never arrived: the call is read back, not re-sent."""
    cursor_class = db._preparing_cursor_class()
    fetchone = cursor_class.fetchone
    lost: list[bool] = []

    def reply_lost(self):
        if lost:
            return fetchone(self)
        lost.append(True)
        fetchone(self)  # the server answered …
        self.connection.close()  # … and the connection went before the answer was read
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(cursor_class, "fetchone", reply_lost)
    _new_request()
    result = services.trigger_call(tenant, call_body(agent, trunk))
    assert lost == [True] and result.accepted
    call = Call.objects.get(pk=result.call.pk)
    assert result.call.started_at == call.started_at
    assert _written(trunk) == (1, 1, 1)


def test_an_error_that_keeps_the_connection_is_raised_not_retried(tenant, agent, trunk):
    """A statement timeout (the trunk's row held by another session) is not a lost connection."""
    _new_request()
    with psycopg.connect(**connection.get_connection_params()) as holder:
        holder.execute("SELECT 1 FROM calls_siptrunk WHERE id = %s FOR UPDATE", [trunk.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 200")
        try:
            with pytest.raises(OperationalError):
                services.trigger_call(tenant, call_body(agent, trunk))
            assert not db.connection_lost(connection)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")
        holder.rollback()
    assert _written(trunk) == (0, 0, 0)


def test_admissions_to_one_trunk_take_turns_in_a_process(tenant, agent, make_trunk, monkeypatch):
    """Threads of one process send one admission statement per trunk at a time (the row lock would make
    them wait in the database, at twice the cost); admissions to other trunks do not wait for them."""
    import threading

    from calls import admission

    in_flight: dict[str, int] = {}
    most: dict[str, int] = {}
    guard = threading.Lock()
    statement = admission._execute

    def counted(database, sql, params, **kwargs):
        name = str(params["id"])  # the trunk's
        with guard:
            in_flight[name] = in_flight.get(name, 0) + 1
            most[name] = max(most.get(name, 0), in_flight[name])
        try:
            return statement(database, sql, params, **kwargs)
        finally:
            with guard:
                in_flight[name] -= 1

    monkeypatch.setattr(admission, "_execute", counted)
    trunk, second = (make_trunk(tenant, name=name, max_cps=1000, max_channels=1000) for name in ("A", "B"))
    results: list[bool] = []

    def place(target):
        from django.db import connection as thread_connection

        try:
            for _ in range(5):
                results.append(services.trigger_call(tenant, call_body(agent, target)).accepted)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=place, args=(t,)) for t in (trunk, second) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 40
    assert most == {str(trunk.pk): 1, str(second.pk): 1}
    assert _written(trunk)[::2] == (20, 20) and _written(second)[::2] == (20, 20)
