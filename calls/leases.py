"""Single-flight claims on due work kept in the database (dialer steps, callback deliveries).

A row carries a due time, a lease and a claim counter. A task claims the row in its own committed
transaction (row lock, due, not leased) before doing the work, so:
- two copies of the same message (a countdown and a sweep, a broker redelivery) never run it twice;
- a worker killed mid-work leaves the lease to expire, and the next claim sees the claim counter
  grow — after `TASK_MAX_DELIVERIES` claims that never finished, the caller records a failure instead
  of looping forever.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.db import models, transaction
from django.utils import timezone

M = TypeVar("M", bound=models.Model)


def claim(
    queryset: models.QuerySet[M],
    pk: Any,
    *,
    due_field: str,
    lease_field: str,
    claims_field: str,
    lease_seconds: float,
    on_claim: Callable[[M], bool] | None = None,
    also_saves: tuple[str, ...] = (),
) -> M | None:
    """Lock row `pk` of `queryset`; if due and not leased, lease it, count the claim, and return it.

    `on_claim(obj)` runs inside the same transaction after the counter is raised; returning False
    gives the claim up (its changes to the fields named in `also_saves` are still saved).
    """
    with transaction.atomic():
        obj = queryset.select_for_update(of=("self",)).filter(pk=pk).first()
        if obj is None:
            return None
        now = timezone.now()
        due_at, lease_until = getattr(obj, due_field), getattr(obj, lease_field)
        if due_at is None or due_at > now or (lease_until is not None and lease_until > now):
            return None
        setattr(obj, lease_field, now + timedelta(seconds=lease_seconds))
        setattr(obj, claims_field, getattr(obj, claims_field) + 1)
        keep = on_claim(obj) if on_claim else True
        obj.save(update_fields=[lease_field, claims_field, *also_saves])
        return obj if keep else None
