"""Campaigns (SPEC §15): call every row of a dataset with one agent over one trunk, with API steps
before and after each call. Status values, reasons and field names are part of the public API."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from tenants.models import TenantOwned


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class RowStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CALLING = "calling", "Calling"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class RowReason(models.TextChoices):
    DO_NOT_CALL = "do_not_call", "On the do-not-call list"
    EXPIRED = "expired", "Not reached by end_at"
    CANCELLED = "cancelled", "Campaign cancelled"
    STEP_FAILED = "step_failed", "A step failed"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted", "Attempts exhausted"
    UNKNOWN_TIMEZONE = "unknown_timezone", "Unknown time zone"


def default_calling_window() -> dict:
    return {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "09:00", "end": "20:00"}


def default_retry() -> dict:
    return {"max_attempts": 3, "delay_minutes": 60, "on": ["Decline", "SIP Call Failed", "Trigger Failed"]}


def default_columns() -> dict:
    return {"phone_number": "phone_number"}


def default_steps() -> dict:
    return {"before_call": [], "after_call": []}


class Campaign(TenantOwned):
    """A dataset called by one agent over one trunk; `status` changes only through the actions."""

    name = models.CharField(max_length=200)
    agent = models.ForeignKey("calls.Agent", on_delete=models.RESTRICT, related_name="campaigns")
    sip_trunk = models.ForeignKey(
        "calls.SipTrunk", on_delete=models.RESTRICT, related_name="campaigns", verbose_name="SIP trunk"
    )
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    calling_window = models.JSONField(default=default_calling_window, blank=True)
    default_region = models.CharField(max_length=2, blank=True, help_text="ISO country code for national numbers")
    timezone = models.CharField(max_length=64, blank=True, help_text="Fallback IANA zone for numbers of unknown zone")
    max_concurrent_calls = models.PositiveIntegerField(default=10)
    retry = models.JSONField(default=default_retry, blank=True)
    columns = models.JSONField(default=default_columns, blank=True)
    steps = models.JSONField(default=default_steps, blank=True)
    callback_url = models.URLField(max_length=2000, blank=True)
    opt_out_dispositions = models.JSONField(default=list, blank=True)
    # The distinct zone keys of the rows (see CampaignRow.zone_key), kept at import so a dispatcher tick
    # asks the rows only about zones whose window is open.
    zone_keys = models.JSONField(default=list, blank=True)
    # The rows' columns in the order the uploads named them (PostgreSQL's jsonb keeps no key order).
    data_columns = models.JSONField(default=list, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], name="campaign_status")]

    def __str__(self) -> str:
        return self.name


class CampaignRow(TenantOwned):
    """One row of the dataset and everything that happened to it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rows")
    row = models.PositiveIntegerField(help_text="Position among the campaign's rows, from 1")
    data = models.JSONField(default=dict)
    phone_number = models.CharField(max_length=20)
    # `|`-joined IANA zones the window must hold in ("" = unknown: the campaign's timezone applies).
    zone_key = models.CharField(max_length=2000, blank=True)
    status = models.CharField(max_length=10, choices=RowStatus.choices, default=RowStatus.PENDING)
    reason = models.CharField(max_length=20, choices=RowReason.choices, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=now)
    # A worker works on the row until then (dispatching it, or running its after-call steps).
    lease_until = models.DateTimeField(null=True, blank=True)
    # Times the current step (dialling, or the after-call steps) was taken without finishing.
    claims = models.PositiveIntegerField(default=0)
    call = models.ForeignKey("calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    variables = models.JSONField(default=dict, blank=True)
    disposition = models.CharField(max_length=100, blank=True)
    extracted = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "row"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "row"], name="campaign_row_unique_number"),
            models.UniqueConstraint(fields=["campaign", "phone_number"], name="campaign_row_unique_phone"),
        ]
        indexes = [
            # The dispatcher's query: due pending rows of one campaign in the open zones, oldest first.
            models.Index(fields=["campaign", "status", "zone_key", "next_attempt_at"], name="campaign_row_due"),
            models.Index(fields=["call"], name="campaign_row_call"),
        ]

    def __str__(self) -> str:
        return f"row {self.row}: {self.phone_number} ({self.status})"

    def attempt_key(self) -> str:
        """The idempotency key of the current attempt: the same attempt can never place two calls."""
        return attempt_key(self.pk, self.attempts)


def attempt_key(row_id, attempt: int) -> str:
    return f"campaign-row:{row_id}:attempt:{attempt}"
