"""A campaign's life: the actions (start, pause, resume, cancel), how a row attempt ends, completion.

Views, admin buttons and tasks call these functions. Every row change is a conditional update on
the row's status, so a late or repeated message (a redelivered task, a recovery) changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from calls import dnc, leases
from calls.models import TERMINAL_STATUSES, ActiveStatus, Call
from calls.webhooks import create_event_delivery
from campaigns import steps
from campaigns.errors import CampaignError
from campaigns.models import Campaign, CampaignRow, CampaignStatus, RowReason, RowStatus
from tenants.errors import ErrorCode
from tenants.queue import enqueue_on_commit

logger = logging.getLogger(__name__)

FINAL_STATUSES = (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)
OPEN_ROW_STATUSES = (RowStatus.PENDING, RowStatus.CALLING)


# --- actions --------------------------------------------------------------------------------------


def _transition(campaign: Campaign, allowed: tuple[str, ...], target: str, verb: str) -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().select_related("agent", "sip_trunk").get(pk=campaign.pk)
        if locked.status not in allowed:
            raise CampaignError(f"a {locked.status} campaign cannot be {verb}", code=ErrorCode.CONFLICT)
        if target == CampaignStatus.RUNNING:
            _check_can_run(locked)
        locked.status = target
        locked.save(update_fields=["status", "updated_at"])
        if target == CampaignStatus.RUNNING:
            enqueue_on_commit("campaigns.dispatch", locked.pk)
    return locked


def _check_can_run(campaign: Campaign) -> None:
    if campaign.agent.status != ActiveStatus.ACTIVE:
        raise CampaignError("Agent is not active")
    if campaign.sip_trunk.status != ActiveStatus.ACTIVE:
        raise CampaignError("SIP trunk is not active")
    if not CampaignRow.objects.filter(campaign=campaign).exists():
        raise CampaignError("The campaign has no rows: upload some first")


def start(campaign: Campaign) -> Campaign:
    """draft or paused → running (400 if the agent or trunk is inactive or there are no rows)."""
    return _transition(campaign, (CampaignStatus.DRAFT, CampaignStatus.PAUSED), CampaignStatus.RUNNING, "started")


def pause(campaign: Campaign) -> Campaign:
    """running → paused: no new calls; calls in progress finish (and their rows settle)."""
    return _transition(campaign, (CampaignStatus.RUNNING,), CampaignStatus.PAUSED, "paused")


def resume(campaign: Campaign) -> Campaign:
    """paused → running."""
    return _transition(campaign, (CampaignStatus.PAUSED,), CampaignStatus.RUNNING, "resumed")


def cancel(campaign: Campaign) -> Campaign:
    """Any open campaign → cancelled: pending rows are skipped (`cancelled`); calls in progress finish."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status in FINAL_STATUSES:
            raise CampaignError(f"a {locked.status} campaign cannot be cancelled", code=ErrorCode.CONFLICT)
        locked.status = CampaignStatus.CANCELLED
        locked.completed_at = timezone.now()
        locked.save(update_fields=["status", "completed_at", "updated_at"])
        skip_pending(locked, RowReason.CANCELLED)
        _announce_end(locked)
    return locked


# --- counts ---------------------------------------------------------------------------------------


def counts(campaign: Campaign) -> dict[str, int]:
    """Rows per status (every status present, 0 when none)."""
    found = dict(CampaignRow.objects.filter(campaign=campaign).values_list("status").annotate(n=Count("pk")).order_by())
    return {status: found.get(status, 0) for status in RowStatus.values}


def outcomes(campaign: Campaign) -> dict[str, int]:
    """Rows per disposition of their latest call (rows without one are not counted)."""
    rows = CampaignRow.objects.filter(campaign=campaign).exclude(disposition="")
    return dict(rows.values_list("disposition").annotate(n=Count("pk")).order_by())


# --- ending rows ----------------------------------------------------------------------------------


def skip_rows(rows: QuerySet[CampaignRow], reason: str) -> int:
    return rows.filter(status=RowStatus.PENDING).update(
        status=RowStatus.SKIPPED, reason=reason, lease_until=None, updated_at=timezone.now()
    )


def skip_pending(campaign: Campaign, reason: str) -> int:
    return skip_rows(CampaignRow.objects.filter(campaign=campaign), reason)


def settle(row: CampaignRow, status: str, reason: str = "", *, error: str = "") -> None:
    """End the row's current attempt for good (completed, failed or skipped)."""
    with transaction.atomic():
        changed = CampaignRow.objects.filter(pk=row.pk, status=RowStatus.CALLING).update(
            status=status, reason=reason, error=error[:500], lease_until=None, claims=0, updated_at=timezone.now()
        )
        if changed:
            enqueue_on_commit("campaigns.dispatch", row.campaign_id)


def release(row: CampaignRow, *, cancelled: bool) -> None:
    """Give back a claimed row whose campaign stopped before it was dialled (the attempt is not counted)."""
    if cancelled:
        settle(row, RowStatus.SKIPPED, RowReason.CANCELLED)
        return
    CampaignRow.objects.filter(pk=row.pk, status=RowStatus.CALLING, call__isnull=True).update(
        status=RowStatus.PENDING, attempts=max(0, row.attempts - 1), lease_until=None
    )


def wait_for_capacity(row: CampaignRow, retry_after: int) -> None:
    """The trunk refused (429): the row waits `Retry-After` seconds; the attempt is not counted."""
    CampaignRow.objects.filter(pk=row.pk, status=RowStatus.CALLING, call__isnull=True).update(
        status=RowStatus.PENDING,
        attempts=max(0, row.attempts - 1),
        next_attempt_at=timezone.now() + timedelta(seconds=retry_after),
        lease_until=None,
    )


def attempt_failed(row: CampaignRow, campaign: Campaign, call_status: str, error: str = "") -> None:
    """This attempt ended with `call_status`: retry later if `retry.on` says so and attempts remain."""
    retry = campaign.retry or {}
    if call_status not in (retry.get("on") or []):
        settle(row, RowStatus.FAILED if error else RowStatus.COMPLETED, error=error)
        return
    if row.attempts < int(retry.get("max_attempts", 1)):
        delay = timedelta(minutes=float(retry.get("delay_minutes", 60)))
        with transaction.atomic():
            changed = CampaignRow.objects.filter(pk=row.pk, status=RowStatus.CALLING).update(
                status=RowStatus.PENDING,
                next_attempt_at=timezone.now() + delay,
                lease_until=None,
                claims=0,
                error=error[:500],
            )
            if changed:
                enqueue_on_commit("campaigns.dispatch", row.campaign_id)
        return
    settle(row, RowStatus.FAILED, RowReason.ATTEMPTS_EXHAUSTED, error=error)


# --- when a call ends -----------------------------------------------------------------------------


def on_call_ended(call: Call) -> None:
    """The calls hook (inside the transaction recording the terminal status): finish the row after commit."""
    fields = call.callback_fields or {}
    row = fields.get("row") if fields.get("campaign_id") else None
    if isinstance(row, dict) and row.get("id") is not None:
        enqueue_on_commit("campaigns.finish_row", row["id"], call.pk)


def finish_row(row_id: int | str, call_id: uuid.UUID | str) -> None:
    """Run the after-call steps of the row whose call `call_id` ended, then settle or re-queue the row.

    Runs once per attempt: the row is taken under a lease, and only while it is `calling` with that
    call (or no call yet: the dial task may not have recorded it).
    """
    row, call = _take_for_finish(row_id, call_id)
    if row is None or call is None:
        return
    campaign = row.campaign
    scope = steps.after_call_scope(call)
    after = steps.run_steps(campaign, row, (campaign.steps or {}).get("after_call") or [], scope)
    CampaignRow.objects.filter(pk=row.pk).update(
        variables=after.variables, disposition=scope["ai_classification"][:100], extracted=scope["extracted"]
    )
    if scope["ai_classification"] and scope["ai_classification"] in (campaign.opt_out_dispositions or []):
        dnc.add_number(campaign.tenant, row.phone_number, f"opt-out in campaign {campaign.name}"[:200])
    if not after.ok:
        settle(row, RowStatus.FAILED, RowReason.STEP_FAILED, error=after.error)
    else:
        attempt_failed(row, campaign, call.status, error=call.rejection_reason)


def _take_for_finish(row_id, call_id) -> tuple[CampaignRow | None, Call | None]:
    now = timezone.now()
    with transaction.atomic():
        row = (
            CampaignRow.objects.select_for_update(of=("self",))
            .select_related("campaign", "campaign__tenant")
            .filter(pk=row_id, status=RowStatus.CALLING)
            .first()
        )
        call = Call.objects.filter(pk=call_id, status__in=TERMINAL_STATUSES).first()
        # Only the call of the row's current attempt finishes it (not a late report of an older one).
        if row is None or call is None or call.idempotency_key != row.attempt_key():
            return None, None
        if row.lease_until is not None and row.lease_until > now and row.call_id == call.pk:
            return None, None  # another worker is running this row's after-call steps
        row.call = call
        row.lease_until = now + timedelta(seconds=settings.CAMPAIGN_ROW_LEASE_SECONDS)
        row.claims += 1
        row.save(update_fields=["call", "lease_until", "claims"])
    if leases.redeliveries_exhausted(row.claims):
        settle(row, RowStatus.FAILED, error=f"the after-call steps were interrupted {row.claims - 1} times")
        return None, None
    return row, call


def maybe_complete(campaign_id: uuid.UUID | str) -> bool:
    """Complete a running campaign with no pending or calling rows left (sends `campaign.completed`)."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if locked is None or locked.status != CampaignStatus.RUNNING:
            return False
        if CampaignRow.objects.filter(campaign=locked, status__in=OPEN_ROW_STATUSES).exists():
            return False
        locked.status, locked.completed_at = CampaignStatus.COMPLETED, timezone.now()
        locked.save(update_fields=["status", "completed_at", "updated_at"])
        _announce_end(locked)
    return True


def _announce_end(campaign: Campaign) -> None:
    if not campaign.callback_url:
        return
    payload = {
        "campaign_id": str(campaign.pk),
        "name": campaign.name,
        "status": campaign.status,
        "counts": counts(campaign),
        "outcomes": outcomes(campaign),
    }
    create_event_delivery(campaign.tenant_id, campaign.callback_url, "campaign.completed", payload)
