"""Celery tasks of outbound calls: thin adapters over calls.services and calls.webhooks.

Every task takes ids, is idempotent (work is claimed in the database before it is done) and runs with
acks_late + reject_on_worker_lost; redeliveries are bounded by claim counters kept in the database.
"""

from __future__ import annotations

from celery import shared_task

from calls import services, webhooks

RELIABLE = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(name="calls.advance_call", **RELIABLE)
def advance_call(call_id: str) -> None:
    services.advance_call(call_id)


@shared_task(name="calls.deliver_webhook", **RELIABLE)
def deliver_webhook(delivery_id: str) -> None:
    webhooks.attempt_delivery(delivery_id)


@shared_task(name="calls.sweep_dialer", ignore_result=True)
def sweep_dialer() -> int:
    return services.sweep_dialer()


@shared_task(name="calls.sweep_webhooks", ignore_result=True)
def sweep_webhooks() -> int:
    return webhooks.sweep_due_deliveries()


@shared_task(name="calls.sweep_stalled", ignore_result=True)
def sweep_stalled() -> int:
    return services.sweep_stalled()
