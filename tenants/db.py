"""Database helpers shared by the apps."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

# psycopg prepares a statement by itself once it ran this often on a connection; Django turns that off
# (None). Set on connections that prepared_cursor uses, so only the statements it runs are prepared.
_ONLY_WHEN_ASKED = 2**31 - 1


@contextmanager
def cursor_without_flush_wait(connection) -> Iterator:
    """A cursor whose writes commit without waiting for PostgreSQL's WAL flush (~1-6 ms per commit).

    For rows whose loss in a database crash costs little — a call-log row, a rate-limit count — never
    for state: with synchronous_commit off a crash can lose the last fraction of a second of such
    writes, never corrupt anything. Inside a caller's transaction the caller's commit decides; other
    databases get a plain cursor.
    """
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            yield cursor
        return
    with connection.cursor() as cursor:
        yield cursor


@contextmanager
def prepared_cursor(connection, *, health_check: bool = True) -> Iterator:
    """A cursor whose statements PostgreSQL parses and plans once per connection, then only executes.

    For a hot path's own statement, run with the same text every time (its values are parameters,
    bound by the server): it saves the parse and the plan on every later run, and psycopg's quoting
    of the parameters into the text. The cursor is Django's wrapper (errors mapped to django.db's, the
    query logged and counted like any other). Other databases, or DB_PREPARED_STATEMENTS off: a
    plain cursor.

    `health_check=False` is for a caller that recovers from a lost connection itself (`connection_lost`,
    then a reconnect and its own check of what was written): the statement goes out without the
    connection's health check (CONN_HEALTH_CHECKS: a `SELECT 1` round trip before a request's first
    query), and once it succeeded the connection counts as checked for the rest of the request.
    """
    if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            yield cursor
        return
    if health_check:
        connection.close_if_health_check_failed()  # as connection.cursor() does: a dead connection is replaced
    connection.ensure_connection()
    raw_connection = connection.connection
    if raw_connection.prepare_threshold is None:
        raw_connection.prepare_threshold = _ONLY_WHEN_ASKED
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = _preparing_cursor_class()(raw_connection)
    cursor = _LoggedAsWritten(raw, connection) if connection.queries_logged else connection.make_cursor(raw)
    with cursor:
        yield cursor
    connection.health_check_done = True  # the statement just went through: the connection works


def connection_lost(connection) -> bool:
    """Whether the last database error closed the connection (the server went away, or the network):
    what was sent may or may not have been executed and committed, and the next query reconnects."""
    return connection.connection is None or connection.connection.closed


def read_rows(connection, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple]:
    """Every row of a hot path's read-only statement, prepared (`prepared_cursor`) and sent without the
    connection's health check round trip: outside a transaction, a connection found lost meanwhile (a
    database restart, an idle timeout) is replaced and the statement sent once more — a read repeats
    safely, as the health check would have replaced the connection before it."""
    try:
        return _fetch_all(connection, sql, params)
    except OperationalError:
        if connection.in_atomic_block or not connection_lost(connection):
            raise
    connection.close()
    return _fetch_all(connection, sql, params)


def _fetch_all(connection, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple]:
    with prepared_cursor(connection, health_check=False) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# A placeholder as Django and psycopg write them: %s, %(name)s, or %% for a literal percent sign.
_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?(?P<kind>.)", re.DOTALL)


@functools.lru_cache(maxsize=1024)
def _numbered(sql: str) -> tuple[str, tuple[str, ...] | int]:
    """`sql` with PostgreSQL's own placeholders ($1, $2, …), and the names its values are taken by
    (a mapping's keys in order) or how many it takes (a sequence). Worked out once per text: the hot
    paths' statements are few and their texts fixed, and psycopg converts a statement longer than 4 KB
    anew on every execution."""
    names: list[str] = []
    positional = 0

    def number(match: re.Match) -> str:
        nonlocal positional
        name, kind = match["name"], match["kind"]
        if kind == "%" and name is None:
            return "%"
        if kind != "s":
            raise ValueError(f"only %s and %(name)s placeholders are supported, not {match[0]!r}")
        if name is None:
            positional += 1
            return f"${positional}"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    text = _PLACEHOLDER.sub(number, sql)
    if names and positional:
        raise ValueError("a statement's placeholders are all named or all positional")
    return text, tuple(names) if names else positional


@functools.cache
def _preparing_cursor_class() -> type:
    import psycopg
    from django.db.backends.postgresql.base import CursorMixin

    class PreparingCursor(CursorMixin, psycopg.RawCursor):
        """Server-side binding, every statement prepared, its placeholders numbered once per text
        (`_numbered`): psycopg receives PostgreSQL's own and only dumps the values."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            if params is None:
                return super().execute(query, None, prepare=True, binary=binary)
            text, order = _numbered(query)
            if isinstance(order, tuple):
                if not isinstance(params, Mapping):
                    raise psycopg.ProgrammingError("a statement with named placeholders takes a mapping")
                values = [params[name] for name in order]
            else:
                if isinstance(params, Mapping) or len(params) != order:
                    raise psycopg.ProgrammingError(f"the statement takes {order} values, {len(params)} given")
                values = list(params)
            return super().execute(text, values, prepare=True, binary=binary)

    return PreparingCursor


class _LoggedAsWritten(CursorDebugWrapper):
    """The query log of a prepared statement: its text as written, with placeholders (the server binds
    the values, so no client-side text holds them)."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)
