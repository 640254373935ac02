"""Dispatching a running campaign's rows (SPEC §15): which rows are due, and one call per row attempt.

A tick (`tick()`, beat every second, and a nudge whenever a campaign call ends) does, per running
campaign, only indexed work bounded by the rows it touches — never a scan of the campaign:
- ends the campaign at `end_at` (pending rows → skipped/expired) and completes it when nothing is left;
- recovers rows whose worker died (lease expired) — see `dial_row`;
- claims up to `max_concurrent_calls - rows calling` due rows (pending, `next_attempt_at` past, in a
  zone whose calling window is open now, at most what the trunk's `max_cps` allows this second),
  marking them `calling` with the attempt counted and a lease, and enqueues `campaigns.dial_row`.

`dial_row(row_id)` places the attempt's call with the key `campaign-row:<id>:attempt:<n>` as the
call's idempotency key; before anything else it looks for a call with that key, so a worker killed
after placing the call but before recording it makes the next worker link that call, not dial again.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from calls import admission, dnc, leases
from calls import services as call_services
from calls.models import TERMINAL_STATUSES, Call
from calls.validation import CallRequestError
from campaigns import lifecycle, steps
from campaigns.importing import row_metadata
from campaigns.models import Campaign, CampaignRow, CampaignStatus, RowReason, RowStatus, attempt_key
from campaigns.zones import open_in
from tenants.queue import enqueue, enqueue_on_commit

logger = logging.getLogger(__name__)


def lease_seconds() -> float:
    return settings.CAMPAIGN_ROW_LEASE_SECONDS


def tick(now: datetime | None = None) -> int:
    """Dispatch every running campaign once; returns how many rows were claimed."""
    ids = list(Campaign.objects.filter(status=CampaignStatus.RUNNING).values_list("pk", flat=True))
    return sum(dispatch_campaign(pk, now) for pk in ids)


def dispatch_campaign(campaign_id: uuid.UUID | str, now: datetime | None = None) -> int:
    """One tick of one campaign; returns the rows claimed (their dial tasks are enqueued on commit)."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("sip_trunk").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != CampaignStatus.RUNNING:
        return 0
    if campaign.end_at and now >= campaign.end_at:
        lifecycle.skip_pending(campaign, RowReason.EXPIRED)
        lifecycle.maybe_complete(campaign.pk)
        return 0
    _recover(campaign, now)
    if campaign.start_at and now < campaign.start_at:
        return 0
    claimed = _claim(campaign, now)
    if not claimed:
        lifecycle.maybe_complete(campaign.pk)
    return len(claimed)


def _recover(campaign: Campaign, now: datetime) -> None:
    """Rows a dead worker left `calling`: redial (the key finds a call already placed) or finish them."""
    stale = CampaignRow.objects.filter(campaign=campaign, status=RowStatus.CALLING).filter(
        Q(lease_until__lt=now) | Q(lease_until__isnull=True)
    )
    fields = ("pk", "attempts", "call_id", "call__status", "call__idempotency_key")
    for row_id, attempts, call_id, call_status, call_key in stale.values_list(*fields)[:500]:
        if call_key != attempt_key(row_id, attempts):  # this attempt's call is not recorded yet
            enqueue("campaigns.dial_row", row_id)
        elif call_status in TERMINAL_STATUSES:
            enqueue("campaigns.finish_row", row_id, call_id)


def _open_zone_keys(campaign: Campaign, now: datetime) -> list[str]:
    window = campaign.calling_window
    return [key for key in campaign.zone_keys or [] if open_in(key or campaign.timezone, window, now)]


def _trunk_budget(campaign: Campaign, now: datetime) -> int:
    """How many calls the trunk can still start this second (the admission decides; this avoids 429s).

    Read from the trunk's admission counters, so a tick costs the same with 10 or 10,000 live calls."""
    return admission.start_budget(campaign.sip_trunk_id, now)


def _claim(campaign: Campaign, now: datetime) -> list[int]:
    if "" in (campaign.zone_keys or []) and not campaign.timezone:
        lifecycle.skip_rows(
            CampaignRow.objects.filter(campaign=campaign, status=RowStatus.PENDING, zone_key=""),
            RowReason.UNKNOWN_TIMEZONE,
        )
    keys = _open_zone_keys(campaign, now)
    if not keys:
        return []
    with transaction.atomic():
        # The campaign's row lock serialises claims per campaign, so concurrent ticks never exceed
        # max_concurrent_calls; SQLite's IMMEDIATE transactions serialise them there.
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != CampaignStatus.RUNNING:
            return []
        calling = CampaignRow.objects.filter(campaign=locked, status=RowStatus.CALLING).count()
        slots = min(locked.max_concurrent_calls - calling, _trunk_budget(campaign, now))
        if slots <= 0:
            return []
        ids = _due_rows(locked, keys, now, slots)
        if not ids:
            return []
        lease = now + timedelta(seconds=lease_seconds())
        CampaignRow.objects.filter(pk__in=ids, status=RowStatus.PENDING).update(
            status=RowStatus.CALLING, attempts=F("attempts") + 1, lease_until=lease, error="", updated_at=now
        )
        for row_id in ids:
            enqueue_on_commit("campaigns.dial_row", row_id)
    return ids


def _due_rows(campaign: Campaign, keys: list[str], now: datetime, limit: int) -> list:
    """The `limit` longest-due pending rows in the open zones, oldest first.

    One query per zone key, each an ordered range scan of the `campaign_row_due` index that stops
    after `limit` rows: an `IN (keys)` with ORDER BY would sort every pending row of the campaign.
    Claims are serialised by the campaign's row lock, so no row lock is needed here.
    """
    pending = CampaignRow.objects.filter(campaign=campaign, status=RowStatus.PENDING, next_attempt_at__lte=now)
    candidates: list[tuple[datetime, Any]] = []
    for key in keys:
        found = pending.filter(zone_key=key).order_by("next_attempt_at").values_list("next_attempt_at", "pk")
        candidates.extend(found[:limit])
    return [pk for _, pk in sorted(candidates)[:limit]]


# --- one attempt ----------------------------------------------------------------------------------


def dial_row(row_id: int | str) -> None:
    """Place the call of the row's current attempt (once, whatever crashed before), or settle the row."""
    row = _lease(row_id)
    if row is None:
        return
    campaign = row.campaign
    key = row.attempt_key()
    existing = Call.objects.filter(tenant_id=row.tenant_id, idempotency_key=key).first()
    if existing is not None:
        _link(row, existing)
        return
    if campaign.status != CampaignStatus.RUNNING:
        lifecycle.release(row, cancelled=campaign.status == CampaignStatus.CANCELLED)
        return
    if dnc.is_listed(row.tenant_id, row.phone_number):
        lifecycle.settle(row, RowStatus.SKIPPED, RowReason.DO_NOT_CALL)
        return
    before_steps = (campaign.steps or {}).get("before_call") or []
    before = steps.run_steps(campaign, row, before_steps)
    if before_steps:
        CampaignRow.objects.filter(pk=row.pk).update(variables=before.variables)
        row.variables = before.variables
    if not before.ok:
        lifecycle.settle(row, RowStatus.FAILED, RowReason.STEP_FAILED, error=before.error)
        return
    _trigger(row, campaign, key)


def _lease(row_id) -> CampaignRow | None:
    """Take the row for this worker: `calling` without this attempt's call yet. Two copies of one attempt may get here
    (a redelivery and a recovery); the attempt's idempotency key keeps them to one call."""
    now = timezone.now()
    with transaction.atomic():
        row = (
            CampaignRow.objects.select_for_update(of=("self",))
            .select_related("campaign", "campaign__tenant", "campaign__agent", "campaign__sip_trunk", "call")
            .filter(pk=row_id, status=RowStatus.CALLING)
            .first()
        )
        if row is None or (row.call is not None and row.call.idempotency_key == row.attempt_key()):
            return None  # settled, or this attempt's call is already recorded
        row.lease_until = now + timedelta(seconds=lease_seconds())
        row.claims += 1
        row.save(update_fields=["lease_until", "claims"])
    if leases.redeliveries_exhausted(row.claims):
        lifecycle.settle(row, RowStatus.FAILED, error=f"dialling was interrupted {row.claims - 1} times")
        return None
    return row


def _call_body(row: CampaignRow, campaign: Campaign) -> dict:
    return {
        "phone_number": row.phone_number,
        "agent_id": str(campaign.agent_id),
        "sip_trunk_id": str(campaign.sip_trunk_id),
        # Before-call variables go into the metadata, so the agent can say {{customer_name}}.
        "metadata": {**row_metadata(campaign, row.data), **(row.variables or {})},
        "callback_url": campaign.callback_url,
    }


def _trigger(row: CampaignRow, campaign: Campaign, key: str) -> None:
    fields = {"campaign_id": str(campaign.pk), "row": {"id": str(row.pk), "number": row.row, "data": row.data}}
    try:
        result = call_services.trigger_call(
            campaign.tenant,
            _call_body(row, campaign),
            idempotency_key=key,
            callback_fields=fields,
            record_rejection=False,
        )
    except call_services.CapacityRefused as refused:
        lifecycle.wait_for_capacity(row, refused.retry_after)
        return
    except CallRequestError as exc:
        existing = Call.objects.filter(tenant_id=row.tenant_id, idempotency_key=key).first()
        if existing is not None:  # a concurrent copy of this attempt won (422: its metadata differed)
            _link(row, existing)
        elif exc.message == dnc.LISTED_MESSAGE:
            lifecycle.settle(row, RowStatus.SKIPPED, RowReason.DO_NOT_CALL)
        else:
            lifecycle.attempt_failed(row, campaign, "Trigger Failed", exc.message)
        return
    _link(row, result.call)


def _link(row: CampaignRow, call: Call) -> None:
    """Record the attempt's call on the row; a call that already ended is finished right away.

    A call that ends later is finished through the calls hook (which finds the row by the call's
    callback fields, linked or not); if that already took the row, it is left alone.
    """
    linked = (
        CampaignRow.objects.filter(pk=row.pk, status=RowStatus.CALLING)
        .exclude(call=call)
        .update(call=call, lease_until=None, claims=0)
    )
    if linked and call.status in TERMINAL_STATUSES:
        enqueue_on_commit("campaigns.finish_row", row.pk, call.pk)
