"""tenants.db.prepared_cursor: a hot path's statement prepared once per PostgreSQL connection, and
otherwise exactly a Django cursor (errors, the query log, health checks, the opt-out)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext

from tenants import db
from tenants.models import Tenant

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
STATEMENT = "SELECT CAST(%(number)s AS integer) + 1, CAST(%(name)s AS text)"


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _run(number: int) -> tuple:
    with db.prepared_cursor(connection) as cursor:
        cursor.execute(STATEMENT, {"number": number, "name": "x"})
        return cursor.fetchone()


@pytest.mark.django_db
@postgresql_only
def test_a_statement_is_prepared_once_and_bound_by_the_server():
    assert _run(1) == (2, "x") and _run(41) == (42, "x")
    assert _prepared().count("SELECT CAST($1 AS integer) + 1, CAST($2 AS text)") == 1
    # Django's own queries are not prepared: only what runs through the prepared cursor
    list(Tenant.objects.filter(name="none"))
    assert not [sql for sql in _prepared() if "tenants_tenant" in sql]


@pytest.mark.django_db
def test_it_logs_the_statement_and_maps_errors_like_any_django_cursor():
    with CaptureQueriesContext(connection) as queries:
        assert _run(2) == (3, "x")
    # logged as written where the server binds the values, else as Django logs any statement
    logged = STATEMENT if connection.vendor == "postgresql" else "SELECT CAST(2 AS integer) + 1, CAST('x' AS text)"
    assert [q["sql"] for q in queries.captured_queries] == [logged]
    with pytest.raises(IntegrityError), transaction.atomic(), db.prepared_cursor(connection) as cursor:
        cursor.execute("INSERT INTO tenants_tenant (id) VALUES (NULL)")


@pytest.mark.django_db
@postgresql_only
def test_switched_off_it_is_a_plain_cursor(settings):
    settings.DB_PREPARED_STATEMENTS = False
    assert _run(5) == (6, "x")
    assert not [sql for sql in _prepared() if "CAST($1 AS integer)" in sql]


@pytest.mark.django_db(transaction=True)
@postgresql_only
def test_a_connection_that_died_is_replaced_before_the_statement(settings):
    # given a reused connection whose server process is gone (a database restart, say)
    assert _run(1) == (2, "x")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with psycopg.connect(_dsn(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    connection.health_check_enabled, connection.health_check_done = True, False  # a new request
    # when the hot path runs, the health check replaces it and the statement is prepared again
    assert _run(7) == (8, "x")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def _dsn() -> str:
    s = connection.settings_dict
    return f"host={s['HOST'] or '127.0.0.1'} port={s['PORT'] or 5432} user={s['USER']} dbname={s['NAME']}"


LONG_STATEMENT = "SELECT CAST(%(number)s AS integer) * 2, CAST(%(name)s AS text) || %(name)s" + " " * 5000


@pytest.mark.django_db
@postgresql_only
def test_placeholders_are_numbered_once_per_text_whatever_its_length():
    # psycopg converts a statement over 4 KB anew every time; the prepared cursor numbers it once
    db._numbered.cache_clear()
    for number in (1, 2, 3):
        with db.prepared_cursor(connection) as cursor:
            cursor.execute(LONG_STATEMENT, {"name": "y", "number": number})
            assert cursor.fetchone() == (number * 2, "yy")
    assert db._numbered.cache_info().misses == 1
    assert "SELECT CAST($1 AS integer) * 2, CAST($2 AS text) || $2" in [s.rstrip() for s in _prepared()]


@pytest.mark.django_db
@postgresql_only
def test_positional_placeholders_and_a_literal_percent_sign():
    with db.prepared_cursor(connection) as cursor:
        cursor.execute("SELECT %s || '%%', CAST(%s AS integer)", ["50", 7])
        assert cursor.fetchone() == ("50%", 7)


@pytest.mark.django_db
@postgresql_only
@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT CAST(%(a)s AS integer)", [1]),  # named placeholders, a sequence of values
        ("SELECT CAST(%s AS integer)", {"a": 1}),  # positional ones, a mapping
        ("SELECT CAST(%s AS integer), CAST(%s AS integer)", [1]),  # too few values
    ],
)
def test_values_that_do_not_match_the_placeholders_are_a_programming_error(sql, params):
    with pytest.raises(ProgrammingError), transaction.atomic(), db.prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)


@pytest.mark.parametrize(
    "sql", ["SELECT %(a)s, %s", "SELECT %d", "SELECT %(a)d"], ids=["mixed", "positional %d", "named %d"]
)
def test_placeholders_other_than_s_or_a_mix_of_both_are_refused(sql):
    with pytest.raises(ValueError):
        db._numbered(sql)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    with psycopg.connect(_dsn(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db(transaction=True)
@postgresql_only
def test_a_read_needs_no_health_check_and_is_sent_again_on_a_new_connection_when_the_old_one_died(
    monkeypatch,
):
    checks: list[bool] = []
    is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(True) or is_usable())
    # given a reused connection whose server process is gone, at the start of a request
    pid = _backend_pid()
    _terminate(pid)
    connection.health_check_enabled, connection.health_check_done = True, False
    # when a hot path reads, the read fails on the dead connection and is sent once more on a new one
    assert db.read_rows(connection, STATEMENT, {"number": 9, "name": "z"}) == [(10, "z")]
    assert checks == [] and _backend_pid() != pid


@pytest.mark.django_db(transaction=True)
@postgresql_only
def test_inside_a_transaction_a_lost_connection_is_an_error_not_a_second_read():
    pid = _backend_pid()
    with pytest.raises(OperationalError), transaction.atomic():
        _terminate(pid)
        db.read_rows(connection, STATEMENT, {"number": 1, "name": "z"})
    connection.close()
