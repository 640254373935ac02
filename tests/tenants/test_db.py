"""tenants.db.prepared_cursor: a hot path's statement prepared once per PostgreSQL connection, and
otherwise exactly a Django cursor (errors, the query log, health checks, the opt-out)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
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
