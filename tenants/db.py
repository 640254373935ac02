"""Database helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction


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
