"""The calls app's name for the one queue helper, `tenants.queue` (moved there so rules can send tasks too).

Delegates at call time, so a test that replaces `calls.queue.enqueue` or `tenants.queue.enqueue`
catches what calls sends either way, on commit or at once.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from tenants import queue as shared


def enqueue(task_name: str, *args: Any, countdown: float | None = None) -> bool:
    """`tenants.queue.enqueue`: send the task now; False (logged) when the broker refused it."""
    return shared.enqueue(task_name, *args, countdown=countdown)


def enqueue_on_commit(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send the task once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: enqueue(task_name, *args, countdown=countdown))
