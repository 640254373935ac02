"""Outbound AI calls: agents, SIP trunks, calls with their event history, and signed callbacks.

Status values and field names here are part of the public call API (SPEC §9, §10).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenants.fields import EncryptedJSONField
from tenants.models import Tenant, TenantOwned


class ActiveStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"


def default_input_schema() -> dict:
    return {"fields": [], "sample_context": {}}


class Agent(TenantOwned):
    """An AI persona that places calls; `input_schema.fields` are the metadata keys a call must carry."""

    name = models.CharField(max_length=200)
    agent_code = models.SlugField(max_length=100, help_text="Unique per tenant; how integrations name the agent")
    status = models.CharField(max_length=10, choices=ActiveStatus.choices, default=ActiveStatus.ACTIVE)
    prompt = models.TextField(
        blank=True, help_text="The agent's system prompt, a template over the call's metadata ({{customer_name}})"
    )
    first_message = models.TextField(
        blank=True, help_text="Spoken first on an outbound call (a template); empty: the agent waits for the callee"
    )
    analysis = models.JSONField(
        default=dict, blank=True, help_text='At the end: {"dispositions": [...], "extract": [{"name", "type", ...}]}'
    )
    verification = models.JSONField(
        default=list, blank=True, help_text="Metadata keys the caller must state to be identity-verified"
    )
    max_turns = models.PositiveIntegerField(default=30, help_text="Most caller turns before the agent ends the call")
    max_duration_seconds = models.PositiveIntegerField(default=600, help_text="Longest conversation, in seconds")
    end_call_message = models.TextField(blank=True, help_text="Spoken when the agent ends the call (a template)")
    voice = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=35, blank=True, default="en-US")
    input_schema = models.JSONField(default=default_input_schema, blank=True)
    tools = models.ManyToManyField(
        "integrations.Endpoint",
        blank=True,
        related_name="agents",
        help_text="Endpoints the agent may use as tools (of the same organisation)",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "agent_code"], name="agent_unique_code")]

    def __str__(self) -> str:
        return f"{self.name} ({self.agent_code})"

    @property
    def required_fields(self) -> list[str]:
        return list((self.input_schema or {}).get("fields") or [])


class AgentSession(TenantOwned):
    """The runtime's state of one conversation held by an agent (calls.runtime): turns, burden state, analysis.

    `state` holds what the server enforces between turns: the pending confirmation (tool + exact
    arguments), failed verification attempts, and a provider failure to report in the outcome.
    """

    conversation = models.OneToOneField("rules.Conversation", on_delete=models.CASCADE, related_name="agent_session")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="sessions")
    state = models.JSONField(default=dict, blank=True)
    turns = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=100, blank=True)
    analysis = models.JSONField(null=True, blank=True)
    # Set while a turn is being answered: a second message at the same time is refused, not interleaved.
    busy_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.agent.name} in {self.conversation_id}"

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


class SipTrunk(TenantOwned):
    """A carrier line: caller id, capacity limits, and the dialer back end that places its calls."""

    name = models.CharField(max_length=200)
    trunk_phone = models.CharField(max_length=20, help_text="Caller id in E.164, e.g. +14155552671")
    max_cps = models.PositiveIntegerField(default=1, help_text="Most call starts in any one-second window")
    max_channels = models.PositiveIntegerField(default=10, help_text="Most live calls at once")
    status = models.CharField(max_length=10, choices=ActiveStatus.choices, default=ActiveStatus.ACTIVE)
    dialer = models.CharField(max_length=50, default="simulated", help_text="Dialer back end (registry name)")
    dialer_config = models.JSONField(default=dict, blank=True, help_text="Settings of the dialer back end")
    # Credentials of the dialer back end (e.g. LiveKit's api_key/api_secret): encrypted, write-only.
    dialer_secrets = EncryptedJSONField(default=dict, blank=True, help_text="Secrets of the dialer back end")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Admission counters (calls.admission), written only by queryset updates in the transactions that
    # admit and end calls, so admission costs the same with 10 or 10,000 live calls: the live calls, the
    # starts of the last second counted by hundredth of a second ([[centisecond, count], …], at most 100
    # whatever the call rate), and the latest start (epoch seconds).
    live_calls = models.IntegerField(default=0, editable=False)
    recent_starts = models.JSONField(default=list, blank=True, editable=False)
    last_start = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "SIP trunk"

    def __str__(self) -> str:
        return f"{self.name} ({self.trunk_phone})"

    def save(self, *args, **kwargs) -> None:
        # An edit of the trunk (admin, API) must not write back counters it read before calls moved them.
        if not self._state.adding and kwargs.get("update_fields") is None and not kwargs.get("force_insert"):
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if not f.primary_key and f.name not in COUNTER_FIELDS
            ]
        super().save(*args, **kwargs)


COUNTER_FIELDS = ("live_calls", "recent_starts", "last_start")


class CallStatus(models.TextChoices):
    INITIATING = "Initiating"
    RINGING = "Ringing"
    ANSWERED = "Answered"
    COMPLETED = "Completed"
    DECLINE = "Decline"
    # Labels spelled like the values (the API's statuses); Django would title-case "Sip Call Failed".
    REJECTED_CAPACITY = "Rejected — Capacity", "Rejected — Capacity"
    TRIGGER_FAILED = "Trigger Failed"
    SIP_CALL_FAILED = "SIP Call Failed", "SIP Call Failed"


LIVE_STATUSES = (CallStatus.INITIATING, CallStatus.RINGING, CallStatus.ANSWERED)
TERMINAL_STATUSES = (
    CallStatus.COMPLETED,
    CallStatus.DECLINE,
    CallStatus.REJECTED_CAPACITY,
    CallStatus.TRIGGER_FAILED,
    CallStatus.SIP_CALL_FAILED,
)


class Call(TenantOwned):
    """One outbound call. `status` only moves forward (see calls.events.record_call_event)."""

    # Every admitted call writes each index of this table. The tenant and the trunk need no index of
    # their own: call_tenant_created and call_trunk_status start with them (lists, deletions, counts).
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    agent = models.ForeignKey(Agent, on_delete=models.RESTRICT, related_name="calls")
    sip_trunk = models.ForeignKey(SipTrunk, on_delete=models.RESTRICT, related_name="calls", db_index=False)
    phone_number = models.CharField(max_length=20)
    metadata = models.JSONField(default=dict, blank=True)
    callback_url = models.URLField(max_length=2000, blank=True)
    status = models.CharField(max_length=30, choices=CallStatus.choices, default=CallStatus.INITIATING)
    rejection_reason = models.CharField(max_length=200, blank=True)
    # The voice conversation of an accepted call: its variables are the call's metadata, and the
    # agent's tools are invoked in it.
    conversation = models.OneToOneField(
        "rules.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="call"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # When the call took a channel (accepted calls only): what max_cps counts.
    started_at = models.DateTimeField(null=True, blank=True)
    start_timestamp = models.DateTimeField(null=True, blank=True, help_text="When the callee answered")
    end_timestamp = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds of conversation")
    call_outcome = models.JSONField(null=True, blank=True)
    transcript_url = models.URLField(max_length=2000, blank=True)
    recording_url = models.URLField(max_length=2000, blank=True)
    last_updated = models.DateTimeField(default=timezone.now)
    stalled_at = models.DateTimeField(null=True, blank=True, help_text="Flagged by the stalled-call sweep")
    # Idempotency-Key of the request that created it (accepted calls only), released after 24 h.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    # Top-level fields the callback carries beside the seed's, set by the code that placed the call
    # (a campaign adds `campaign_id` and `row`), so `calls` needs no knowledge of who that was.
    callback_fields = models.JSONField(default=dict, blank=True)
    # Dialer bookkeeping: the next due step (picked up by a task or the sweep), a lease so one worker
    # runs it at a time, and how often the current step was claimed (bounds redeliveries).
    placed_at = models.DateTimeField(null=True, blank=True)
    provider_call_id = models.CharField(max_length=200, blank=True)
    dialer_state = models.JSONField(default=dict, blank=True)
    dialer_due_at = models.DateTimeField(null=True, blank=True)
    dialer_lease_until = models.DateTimeField(null=True, blank=True)
    dialer_claims = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="call_unique_idempotency_key"),
        ]
        indexes = [
            models.Index(fields=["sip_trunk", "status"], name="call_trunk_status"),
            # A max_channels refusal's Retry-After reads the oldest live start: one index entry, however
            # many calls are live or ended on the trunk.
            models.Index(
                fields=["sip_trunk", "started_at"],
                condition=models.Q(status__in=LIVE_STATUSES),
                name="call_trunk_live_started",
            ),
            models.Index(fields=["tenant", "-created_at"], name="call_tenant_created"),
            models.Index(fields=["dialer_due_at"], name="call_dialer_due"),
            models.Index(fields=["status", "last_updated"], name="call_status_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.phone_number} — {self.status}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class CallEvent(TenantOwned):
    """Every status report about a call, applied or ignored, with its time and source."""

    tenant_parent = "call"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=30, choices=CallStatus.choices)
    source = models.CharField(max_length=50, help_text="Who reported it: api, capacity, simulated, sweep…")
    occurred_at = models.DateTimeField(help_text="When it happened, as reported")
    recorded_at = models.DateTimeField(default=timezone.now)
    ignored = models.BooleanField(default=False)
    ignored_reason = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["recorded_at", "id"]

    def __str__(self) -> str:
        return f"{self.status} from {self.source}{' (ignored)' if self.ignored else ''}"


class DoNotCallEntry(TenantOwned):
    """A number the tenant must never call: checked by POST /integration/v1/calls and at campaign dial time."""

    phone_number = models.CharField(max_length=20, help_text="E.164")
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "do-not-call number"
        constraints = [models.UniqueConstraint(fields=["tenant", "phone_number"], name="dnc_unique_number")]

    def __str__(self) -> str:
        return self.phone_number


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(TenantOwned):
    """One notification to send (the outbox row), written with the terminal status it reports."""

    tenant_parent = "call"

    # Null for an event about something other than one call (e.g. `campaign.completed`).
    call = models.ForeignKey(Call, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    url = models.URLField(max_length=2000)
    # The exact body sent on every attempt (signatures cover these bytes).
    payload = models.TextField()
    webhook_id = models.CharField(max_length=64, unique=True, help_text="Stable across retries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts since created or redelivered")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A worker is sending it until then")
    claims = models.PositiveIntegerField(default=0, help_text="Claims since the last finished attempt")
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            # The admin dashboard's delivery chart (one tenant, recent rows).
            models.Index(fields=["tenant", "-created_at"], name="delivery_tenant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} ({self.status})"


class AttemptOutcome(models.TextChoices):
    SENDING = "sending", "Sending"
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    INTERRUPTED = "interrupted", "Interrupted (worker lost)"


class WebhookAttempt(TenantOwned):
    """One try at sending a delivery, recorded before it is made and completed after."""

    tenant_parent = "delivery"

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=12, choices=AttemptOutcome.choices, default=AttemptOutcome.SENDING)
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["number", "started_at"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique_number")]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"
