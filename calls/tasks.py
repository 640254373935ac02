"""Celery tasks of outbound calls: thin adapters over calls.dialing and calls.webhooks.

Every task is idempotent. The tasks on one call or delivery take its id, claim the row in the database
before working and run with acks_late + reject_on_worker_lost; their redeliveries are bounded by claim
counters kept in the database. The sweeps are periodic jobs (`PERIODIC`: acknowledged on start, never
redelivered; beat's next run is the retry — see tenants/tasks_support.py).
"""

from __future__ import annotations

from celery import shared_task

from calls import admission, dialing, webhooks
from calls.dialers import livekit
from tenants.tasks_support import PERIODIC

RELIABLE = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(name="calls.advance_call", **RELIABLE)
def advance_call(call_id: str) -> None:
    dialing.advance_call(call_id)


@shared_task(name="calls.livekit_dial", **RELIABLE)
def livekit_dial(call_id: str) -> None:
    livekit.dial(call_id)


@shared_task(name="calls.deliver_webhook", **RELIABLE)
def deliver_webhook(delivery_id: str) -> None:
    webhooks.attempt_delivery(delivery_id)


@shared_task(name="calls.sweep_dialer", **PERIODIC)
def sweep_dialer() -> int:
    return dialing.sweep_dialer()


@shared_task(name="calls.sweep_webhooks", **PERIODIC)
def sweep_webhooks() -> int:
    return webhooks.sweep_due_deliveries()


@shared_task(name="calls.sweep_stalled", **PERIODIC)
def sweep_stalled() -> int:
    return dialing.sweep_stalled()


@shared_task(name="calls.reconcile_trunks", **PERIODIC)
def reconcile_trunks() -> int:
    return admission.reconcile_trunks()
