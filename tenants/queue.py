"""Sending Celery tasks by name: the one way services hand work to the worker.

Services name the task (`"calls.advance_call"`) instead of importing `calls.tasks`, so the tasks module
(an adapter over the services) is never imported back by them. A broker failure is logged, not raised:
every task sent this way has a sweep that picks lost work up, or is best effort (`rules.compile_ruleset`:
a process that needs a rule set builds it itself). Here rather than in calls so that rules can use it.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from celery.app.task import Task
from django.db import transaction

logger = logging.getLogger(__name__)


def _task(task_name: str) -> Task:
    tasks = current_app.tasks
    if task_name not in tasks:
        # A web process has not imported the apps' tasks modules yet: run Celery's autodiscovery.
        current_app.loader.import_default_modules()
    return tasks[task_name]


def enqueue(task_name: str, *args: Any, countdown: float | None = None) -> bool:
    """Send task `task_name` now with `args` (as strings); False (logged) when the broker refused it."""
    try:
        _task(task_name).apply_async(args=[str(a) for a in args], countdown=countdown or None)
    except Exception:
        logger.warning("could not enqueue %s; the sweep will retry", task_name, exc_info=True)
        return False
    return True


def enqueue_on_commit(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send the task once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: enqueue(task_name, *args, countdown=countdown))
