"""Signed completion callbacks (SPEC §10): the outbox row, signing, delivery with retries, redelivery.

- `create_delivery(call)` writes the WebhookDelivery in the caller's transaction (the one that records
  the terminal status) and enqueues it on commit.
- `attempt_delivery(delivery_id)` (the `calls.deliver_webhook` task) claims the delivery, records an
  attempt *before* sending, sends through `integrations.http` (SSRF-checked, 30 s, no redirects), and
  records the result: delivered, or the next attempt on the retry schedule, or failed.
- `sweep_due_deliveries()` (beat) re-enqueues due deliveries whose message was lost.
- `redeliver(delivery)` (admin) starts a fresh round of attempts.

Signatures, over the exact bytes sent:
- `X-Switchboard-Signature`: hex HMAC-SHA256 of the body keyed with the tenant's whole secret string;
- `webhook-id` / `webhook-timestamp` / `webhook-signature` (Standard Webhooks): `v1,` + base64
  HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the base64-decoded part after `whsec_`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calls import leases
from calls.models import (
    AttemptOutcome,
    Call,
    CallStatus,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
)
from calls.representations import iso_ms
from tenants import metrics, queue

logger = logging.getLogger(__name__)

EVENTS: dict[str, str] = {
    CallStatus.COMPLETED: "call.completed",
    CallStatus.DECLINE: "call.declined",
    CallStatus.REJECTED_CAPACITY: "call.rejected",
    CallStatus.TRIGGER_FAILED: "call.failed",
    CallStatus.SIP_CALL_FAILED: "call.failed",
}
SECRET_PREFIX = "whsec_"
RESPONSE_EXCERPT_CHARS = 500
MAX_RESPONSE_BYTES = 1024 * 1024
DELIVERY_OUTCOME_FIELDS = (
    "last_status_code",
    "last_error",
    "lease_until",
    "claims",
    "status",
    "delivered_at",
    "next_attempt_at",
    "enqueued_at",
)


# --- payload and signatures ------------------------------------------------------------------------


def build_payload(call: Call) -> str:
    """The exact JSON body of the notification for `call` (terminal)."""
    payload = {
        "event": EVENTS[call.status],
        "call_id": str(call.pk),
        "call_status": call.status,
        "call_outcome": call.call_outcome,
        "duration": call.duration,
        "transcript_url": call.transcript_url or None,
        "recording_url": call.recording_url or None,
        "metadata": call.metadata,
        "occurred_at": iso_ms(call.end_timestamp),
    }
    # Fields of whoever placed the call (a campaign's `campaign_id` and `row`) come beside the seed's,
    # never instead of them.
    for name, value in (call.callback_fields or {}).items():
        payload.setdefault(name, value)
    return _body(payload)


def _body(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def hex_signature(secret: str, body: bytes) -> str:
    """`crypto.createHmac('sha256', secret).update(body).digest('hex')`."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks `v1,<base64>` over `{id}.{timestamp}.{body}`."""
    key_text = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    key = base64.b64decode(key_text)
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, delivery: WebhookDelivery, body: bytes, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "X-Switchboard-Event": delivery.event,
        "X-Switchboard-Signature": hex_signature(secret, body),
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secret, delivery.webhook_id, timestamp, body),
    }


# --- the outbox ------------------------------------------------------------------------------------


def create_delivery(call: Call) -> WebhookDelivery:
    """Write the notification of a terminal `call` (call inside its transaction); sent on commit."""
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        tenant_id=call.tenant_id,
        call=call,
        event=EVENTS[call.status],
        url=call.callback_url,
        payload=build_payload(call),
        webhook_id=f"msg_{uuid.uuid4().hex}",
        next_attempt_at=now,
        enqueued_at=now,
        created_at=now,
    )
    _enqueue_on_commit(delivery.pk)
    return delivery


def create_event_delivery(tenant_id, url: str, event: str, payload: dict) -> WebhookDelivery:
    """Write a notification that is not about one call (e.g. `campaign.completed`); sent on commit.

    Signed, retried, swept and redeliverable exactly like a call's callback. Call it inside the
    transaction that records what it reports.
    """
    now = timezone.now()
    body = {"event": event, **payload, "occurred_at": iso_ms(now)}
    delivery = WebhookDelivery.objects.create(
        tenant_id=tenant_id,
        call=None,
        event=event,
        url=url,
        payload=_body(body),
        webhook_id=f"msg_{uuid.uuid4().hex}",
        next_attempt_at=now,
        enqueued_at=now,
        created_at=now,
    )
    _enqueue_on_commit(delivery.pk)
    return delivery


def _enqueue_on_commit(delivery_id, countdown: float | None = None) -> None:
    queue.enqueue_on_commit("calls.deliver_webhook", delivery_id, countdown=countdown)


def retry_delay(attempt_number: int) -> float | None:
    """Seconds to wait after failed attempt `attempt_number` (1-based), with jitter; None: give up."""
    schedule = settings.CALLS_WEBHOOK_RETRY_SCHEDULE
    if attempt_number > len(schedule):
        return None
    jitter = settings.CALLS_WEBHOOK_JITTER
    return schedule[attempt_number - 1] * random.uniform(1 - jitter, 1 + jitter)


def max_attempts() -> int:
    return len(settings.CALLS_WEBHOOK_RETRY_SCHEDULE) + 1


# --- delivering ------------------------------------------------------------------------------------


def _start_attempt(delivery: WebhookDelivery) -> WebhookAttempt | None:
    """Inside the claim: close attempts a killed worker left open, give up if that keeps happening
    (None), else record the new attempt as `sending` (committed before anything is sent)."""
    if delivery.claims > 1:  # the previous claim never finished: its attempt is still "sending"
        lost = WebhookAttempt.objects.filter(delivery=delivery, outcome=AttemptOutcome.SENDING)
        lost.update(outcome=AttemptOutcome.INTERRUPTED, error="the worker was lost during this attempt")
    if leases.redeliveries_exhausted(delivery.claims):
        delivery.status = DeliveryStatus.FAILED
        delivery.last_error = f"gave up: the delivery task was interrupted {delivery.claims - 1} times"
        delivery.next_attempt_at = None
        delivery.lease_until = None
        return None
    number = WebhookAttempt.objects.filter(delivery=delivery).count() + 1
    delivery.attempts += 1
    return WebhookAttempt.objects.create(tenant_id=delivery.tenant_id, delivery=delivery, number=number)


def _claim(delivery_id: Any) -> tuple[WebhookDelivery, WebhookAttempt] | None:
    """The due, unleased delivery, leased to this worker, with its new attempt (recorded `sending`)."""
    started: list[WebhookAttempt] = []

    def start(claimed: WebhookDelivery) -> bool:
        attempt = _start_attempt(claimed)
        if attempt is not None:
            started.append(attempt)
        return attempt is not None

    delivery = leases.claim(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).select_related("tenant"),
        delivery_id,
        due_field="next_attempt_at",
        lease_field="lease_until",
        claims_field="claims",
        lease_seconds=settings.CALLS_WEBHOOK_TIMEOUT_SECONDS + settings.CALLS_LEASE_MARGIN_SECONDS,
        on_claim=start,
        also_saves=("attempts", "status", "last_error", "next_attempt_at"),
    )
    return (delivery, started[0]) if delivery is not None else None


def attempt_delivery(delivery_id) -> WebhookAttempt | None:
    """Send delivery `delivery_id` once if it is due and not being sent; record what happened."""
    from integrations import http

    claimed = _claim(delivery_id)
    if claimed is None:
        return None
    delivery, attempt = claimed
    timeout = settings.CALLS_WEBHOOK_TIMEOUT_SECONDS
    body = delivery.payload.encode()
    headers = signed_headers(delivery.tenant.webhook_secret, delivery, body)
    started = time.monotonic()
    status_code, excerpt, error, permanent = None, "", "", False
    try:
        response = http.send(
            "POST",
            delivery.url,
            headers=headers,
            data=body,
            connect_timeout=min(10.0, timeout),
            read_timeout=timeout,
            deadline=timeout,
            max_bytes=MAX_RESPONSE_BYTES,
            follow_redirects=False,
            pool_key="calls-webhooks",
        )
        status_code, excerpt = response.status_code, response.text[:RESPONSE_EXCERPT_CHARS]
        if not response.ok:
            error = f"HTTP {status_code}"
    except http.OutboundError as exc:
        error = str(exc) or type(exc).__name__
        # A refused destination will not become allowed by waiting: no retries.
        permanent = isinstance(exc, (http.DestinationNotAllowed, http.InvalidURL))
    except Exception as exc:  # a bug must not leave the attempt open: record it and retry on schedule
        logger.exception("callback attempt crashed", extra={"delivery_id": str(delivery.pk)})
        error = f"internal error: {type(exc).__name__}"
    if error:
        logger.info(
            "callback attempt failed",
            extra={"delivery_id": str(delivery.pk), "attempt": attempt.number, "error": error},
        )
    attempt.outcome = AttemptOutcome.FAILURE if error else AttemptOutcome.SUCCESS
    attempt.status_code, attempt.response_excerpt, attempt.error = status_code, excerpt, error[:500]
    attempt.duration_ms = int((time.monotonic() - started) * 1000)
    return _finish_attempt(delivery.pk, attempt, permanent)


def _finish_attempt(delivery_id, attempt: WebhookAttempt, permanent: bool) -> WebhookAttempt:
    now = timezone.now()
    error, status_code = attempt.error, attempt.status_code
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        attempt.save(update_fields=["outcome", "status_code", "response_excerpt", "error", "duration_ms"])
        delivery.last_status_code, delivery.last_error = status_code, error
        delivery.lease_until, delivery.claims = None, 0
        if delivery.status == DeliveryStatus.PENDING:
            _schedule_after(delivery, attempt, now, permanent)
        delivery.save(update_fields=[*DELIVERY_OUTCOME_FIELDS])
        outcome = _attempt_outcome(attempt, delivery)
        transaction.on_commit(lambda: metrics.observe_webhook_attempt(outcome, (attempt.duration_ms or 0) / 1000))
    return attempt


def _attempt_outcome(attempt: WebhookAttempt, delivery: WebhookDelivery) -> str:
    if attempt.outcome == AttemptOutcome.SUCCESS:
        return "delivered"
    return "failed" if delivery.status == DeliveryStatus.FAILED else "retrying"


def _schedule_after(delivery: WebhookDelivery, attempt: WebhookAttempt, now, permanent: bool) -> None:
    if attempt.outcome == AttemptOutcome.SUCCESS:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = DeliveryStatus.DELIVERED, now, None
        return
    delay = None if permanent else retry_delay(delivery.attempts)
    if delay is None:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        return
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    if delay <= settings.CALLS_MAX_COUNTDOWN_SECONDS:
        delivery.enqueued_at = now
        _enqueue_on_commit(delivery.pk, countdown=delay)
    else:
        delivery.enqueued_at = None


def sweep_due_deliveries(limit: int = 500) -> int:
    """Enqueue pending deliveries that are due, not leased, and not enqueued recently (lost messages)."""

    now = timezone.now()
    stale = now - timedelta(seconds=settings.CALLS_REENQUEUE_AFTER_SECONDS)
    ids = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .exclude(lease_until__gt=now)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=stale))
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        WebhookDelivery.objects.filter(pk__in=ids).update(enqueued_at=now)
    for delivery_id in ids:
        queue.enqueue("calls.deliver_webhook", delivery_id)
    return len(ids)


def redeliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send `delivery` again now, with a fresh retry schedule (its attempt history is kept)."""
    now = timezone.now()
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        locked.status = DeliveryStatus.PENDING
        locked.attempts, locked.claims = 0, 0
        locked.next_attempt_at, locked.lease_until, locked.enqueued_at = now, None, now
        locked.delivered_at = None
        locked.save()
        _enqueue_on_commit(locked.pk)
    return locked
