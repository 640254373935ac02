"""Celery tasks of campaigns: thin adapters over campaigns.dispatch and campaigns.lifecycle.

`campaigns.tick` is the periodic dispatcher (beat, every second); `campaigns.dispatch` the nudge of
one campaign (on start and whenever one of its rows settles). Every task here is PERIODIC-style
(acknowledged on start) because the database, not the broker, holds the work: a row whose worker
died stays `calling` under an expiring lease and the tick re-enqueues it; the row's claim counter
bounds how often (TASK_MAX_DELIVERIES), so a row that kills its worker cannot loop forever.
"""

from __future__ import annotations

from celery import shared_task

from campaigns import dispatch, lifecycle
from tenants.tasks_support import PERIODIC


@shared_task(name="campaigns.tick", **PERIODIC)
def tick() -> int:
    return dispatch.tick()


@shared_task(name="campaigns.dispatch", **PERIODIC)
def dispatch_campaign(campaign_id: str) -> int:
    return dispatch.dispatch_campaign(campaign_id)


@shared_task(name="campaigns.dial_row", **PERIODIC)
def dial_row(row_id: str) -> None:
    dispatch.dial_row(row_id)


@shared_task(name="campaigns.finish_row", **PERIODIC)
def finish_row(row_id: str, call_id: str) -> None:
    lifecycle.finish_row(row_id, call_id)
