"""Celery tasks of the rules app: thin adapters over rules.ruleset."""

from __future__ import annotations

import logging

from celery import shared_task

from rules import ruleset
from tenants.tasks_support import PERIODIC

logger = logging.getLogger(__name__)


# Best effort, like a periodic job (tenants.tasks_support.PERIODIC): acknowledged on start and never
# redelivered. A lost run costs nothing but speed: every process builds the version it needs itself.
@shared_task(name=ruleset.COMPILE_TASK, **PERIODIC)
def compile_ruleset(tenant_id: str) -> None:
    seconds = ruleset.compile_and_share(tenant_id)
    if seconds is not None:
        logger.info("compiled the rules of tenant %s in %.3f s", tenant_id, seconds)
