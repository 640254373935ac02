"""Admission counters of a SIP trunk: what `trigger_call` checks under the trunk's row lock.

The trunk row carries `live_calls` and `recent_starts` (the start times of the calls admitted during
the last second). Admitting a call and ending one update them in the same transaction that writes the
call, so a check reads one locked row however many calls are live or recently started:

- `capacity_refusal(trunk, now)` — why the locked trunk cannot start a call now, or None;
- `take_channel(trunk, now)` — count an admitted call (same transaction, trunk locked);
- `release_channel(call)` — count a call that just became final (same transaction as its status);
- `reconcile_trunks()` — the periodic repair from the calls themselves, for counts changed outside
  these paths (a live call deleted, rows edited by hand).

Lock order is always call row → trunk row (ending) or trunk row → new call (admitting), never the
reverse, so the two cannot deadlock.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, F, IntegerField, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from calls.dialers import get_dialer
from calls.models import LIVE_STATUSES, Call, SipTrunk

MAX_CHANNELS_MESSAGE = "Trunk concurrency (max_channels) exhausted"
MAX_CPS_MESSAGE = "Trunk call rate (max_cps) exceeded"
MAX_RETRY_AFTER_SECONDS = 3600
WINDOW_SECONDS = 1.0


def _in_window(trunk: SipTrunk, now: datetime) -> list[float]:
    cutoff = now.timestamp() - WINDOW_SECONDS
    return sorted(t for t in trunk.recent_starts or [] if isinstance(t, int | float) and t > cutoff)


def capacity_refusal(trunk: SipTrunk, now: datetime) -> tuple[str, int] | None:
    """Why `trunk` cannot start a call at `now` — (message, Retry-After seconds) — or None.

    Run under the trunk's lock, on the row just read. A start counts for max_cps during the one
    second after it (a sliding window, so no one-second window ever holds more than max_cps).
    """
    if trunk.live_calls >= trunk.max_channels:
        # Only on a refusal: when the oldest live call is expected to end.
        live = Call.objects.filter(sip_trunk=trunk, status__in=LIVE_STATUSES)
        oldest = live.aggregate(oldest=Min("started_at"))["oldest"] or now
        expected = timedelta(seconds=get_dialer(trunk.dialer).expected_duration(trunk.dialer_config))
        return MAX_CHANNELS_MESSAGE, _whole_seconds((oldest + expected - now).total_seconds())
    recent = _in_window(trunk, now)
    if len(recent) >= trunk.max_cps:
        oldest = recent[-trunk.max_cps]
        return MAX_CPS_MESSAGE, _whole_seconds(oldest + WINDOW_SECONDS - now.timestamp())
    return None


def take_channel(trunk: SipTrunk, now: datetime) -> None:
    """Count a call admitted at `now` on the locked `trunk` (one UPDATE, same transaction)."""
    recent = [*_in_window(trunk, now), now.timestamp()][-max(1, trunk.max_cps) :]
    SipTrunk.objects.filter(pk=trunk.pk).update(live_calls=F("live_calls") + 1, recent_starts=recent)
    trunk.live_calls += 1
    trunk.recent_starts = recent


def release_channel(call: Call) -> None:
    """Count `call`, live until now, as ended: run in the transaction that makes it final."""
    SipTrunk.objects.filter(pk=call.sip_trunk_id).update(live_calls=Greatest(F("live_calls") - 1, Value(0)))


def reconcile_trunk(trunk_id: uuid.UUID | str) -> int:
    """Recount one trunk's live calls under its lock; returns the corrected count."""
    with transaction.atomic():
        trunk = SipTrunk.objects.select_for_update().filter(pk=trunk_id).first()
        if trunk is None:
            return 0
        # Under the trunk's lock no call is admitted; a call ending concurrently either committed
        # (not counted here) or will decrement after this commit (counted here): both end right.
        live = Call.objects.filter(sip_trunk=trunk, status__in=LIVE_STATUSES).count()
        if live != trunk.live_calls:
            SipTrunk.objects.filter(pk=trunk.pk).update(live_calls=live)
        return live


def reconcile_trunks() -> int:
    """Repair every trunk whose live-call counter differs from its calls; returns how many were off."""
    counted = (
        Call.objects.filter(sip_trunk=OuterRef("pk"), status__in=LIVE_STATUSES)
        .order_by()
        .values("sip_trunk")
        .annotate(n=Count("pk"))
        .values("n")
    )
    off = (
        SipTrunk.objects.annotate(counted=Coalesce(Subquery(counted, output_field=IntegerField()), 0))
        .filter(~Q(live_calls=F("counted")))
        .values_list("pk", flat=True)
    )
    ids = list(off)
    for trunk_id in ids:
        reconcile_trunk(trunk_id)
    return len(ids)


def _whole_seconds(seconds: float) -> int:
    return max(1, min(MAX_RETRY_AFTER_SECONDS, math.ceil(seconds)))
