"""Credentials, connections, endpoints and the log of every call made through them.

Secrets (credential secrets, runtime auth state, connection default headers, endpoint headers) are
stored as Fernet ciphertext; the raw columns never hold plaintext.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from fernet_fields import EncryptedTextField

from tenants.fields import EncryptedJSONField
from tenants.models import TenantOwned

DEFAULT_RETRY_STATUSES = [429, 502, 503, 504]
DEFAULT_MAX_RESPONSE_BYTES = 5 * 1024 * 1024


def default_retry() -> dict:
    """The connection's retry policy when nothing is set (also the source of missing keys)."""
    return {
        "max_retries": 2,
        "base_delay": 0.5,
        "max_delay": 10.0,
        "retry_statuses": list(DEFAULT_RETRY_STATUSES),
        "retry_on_connection_errors": True,
    }


class Credential(TenantOwned):
    """A named, reusable piece of authentication; its type is a module in `integrations.auth`."""

    name = models.CharField(max_length=200)
    # Not a choices field: the types live in the registry (integrations.auth.CREDENTIAL_TYPES), so a
    # new type needs no migration. Saving validates the type against the registry.
    type = models.CharField(max_length=50, default="none")
    config = models.JSONField(default=dict, blank=True, help_text="Non-secret settings of the type")
    secrets = EncryptedJSONField(default=dict, blank=True, help_text="Secret values (literal, env:NAME or file:/path)")
    # Runtime state a type keeps for itself (e.g. OAuth refresh tokens), encrypted like the secrets.
    state = EncryptedJSONField(default=dict, blank=True, editable=False)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="credential_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class Connection(TenantOwned):
    """An API a tenant calls: base URL, auth, defaults and policies shared by its endpoints."""

    name = models.CharField(max_length=200)
    base_url = models.URLField(max_length=2000)
    credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.PROTECT, related_name="connections"
    )
    default_headers = EncryptedJSONField(default=dict, blank=True, help_text="Header templates sent on every call")
    connect_timeout = models.FloatField(default=3.0)
    read_timeout = models.FloatField(default=5.0)
    total_deadline = models.FloatField(default=30.0, help_text="Seconds for all attempts together")
    retry = models.JSONField(
        default=default_retry,
        blank=True,
        help_text="max_retries, base_delay, max_delay (seconds), retry_statuses, retry_on_connection_errors",
    )
    verify_tls = models.BooleanField(default=True)
    follow_redirects = models.BooleanField(default=False)
    max_response_bytes = models.PositiveIntegerField(default=DEFAULT_MAX_RESPONSE_BYTES)
    # Signed requests (SPEC §17, integrations.signing): the secret is shown once, when signing is turned
    # on or the secret rotated, and never again.
    sign_requests = models.BooleanField(
        default=False, help_text="Sign every request (X-Switchboard-Request-Signature) so the API can verify it"
    )
    signing_secret = EncryptedTextField(blank=True, editable=False)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def retry_policy(self) -> dict:
        return {**default_retry(), **(self.retry or {})}


class Method(models.TextChoices):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


class BodyType(models.TextChoices):
    NONE = "none"
    JSON = "json"
    TEXT = "text"
    FORM = "form"
    MULTIPART = "multipart"
    RAW = "raw"


class ErrorPolicy(models.TextChoices):
    CONTINUE = "continue"
    RETRY = "retry"
    FAIL = "fail"
    BRANCH = "branch"


class Burden(models.TextChoices):
    AMBIENT = "ambient"
    CONVERSATIONAL = "conversational"
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    VERIFIED = "verified"


class EndpointQuerySet(models.QuerySet):
    def for_execution(self) -> EndpointQuerySet:
        """With everything `integrations.executor.execute()` reads, so a call makes no extra query."""
        return self.select_related("tenant", "connection", "connection__credential")


class Endpoint(TenantOwned):
    """One operation of a connection; also an AI tool (`tool_name`)."""

    objects = EndpointQuerySet.as_manager()
    tenant_parent = "connection"  # an endpoint is always of its connection's tenant

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="endpoints")
    name = models.CharField(max_length=200)
    tool_name = models.SlugField(max_length=64, help_text="Unique per tenant; the AI tool's name")
    description = models.TextField(blank=True, help_text="What it does and returns (shown to the AI)")
    method = models.CharField(max_length=7, choices=Method.choices, default=Method.GET)
    path = models.CharField(max_length=2000, blank=True, help_text="Template appended to the base URL")
    query = models.JSONField(default=dict, blank=True, help_text="Query parameter name → template")
    headers = EncryptedJSONField(default=dict, blank=True, help_text="Header name → template")
    body_type = models.CharField(max_length=10, choices=BodyType.choices, default=BodyType.NONE)
    body_template = models.TextField(blank=True)
    parameters = models.JSONField(default=list, blank=True)
    response_mapping = models.JSONField(default=dict, blank=True, help_text="Variable → path in the response")
    response_template = models.TextField(blank=True, help_text="What to say with the result")
    include_raw = models.BooleanField(default=False)
    connect_timeout = models.FloatField(null=True, blank=True, help_text="Overrides the connection's")
    read_timeout = models.FloatField(null=True, blank=True, help_text="Overrides the connection's")
    follow_redirects = models.BooleanField(null=True, blank=True, help_text="Overrides the connection's")
    error_policy = models.CharField(max_length=10, choices=ErrorPolicy.choices, default=ErrorPolicy.CONTINUE)
    burden = models.CharField(max_length=15, choices=Burden.choices, default=Burden.CONVERSATIONAL)
    cache_ttl = models.PositiveIntegerField(default=0, help_text="Seconds to cache GET/HEAD responses (0: off)")
    # What a voice agent says around the call (templates over the conversation's variables; see
    # docs/agent-tools.md): when it starts, if it takes longer than N seconds, and when it fails.
    say_on_start = models.TextField(blank=True, help_text="Voice: said when the tool starts")
    say_on_delay = models.TextField(blank=True, help_text="Voice: said when the tool takes longer than the delay")
    say_on_delay_seconds = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Voice: seconds before say_on_delay (default 3)"
    )
    say_on_failure = models.TextField(blank=True, help_text="Voice: said when the call fails (replaces the response)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connection__name", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "tool_name"], name="endpoint_unique_tool_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.tool_name})"


# What a user edits (REST and admin alike), in display order.
CONNECTION_FIELDS = [
    "name", "base_url", "credential", "default_headers", "connect_timeout", "read_timeout", "total_deadline",
    "retry", "verify_tls", "follow_redirects", "max_response_bytes", "sign_requests", "description",
]  # fmt: skip
ENDPOINT_FIELDS = [
    "connection", "name", "tool_name", "description", "method", "path", "query", "headers", "body_type",
    "body_template", "parameters", "response_mapping", "response_template", "include_raw", "connect_timeout",
    "read_timeout", "follow_redirects", "error_policy", "burden", "cache_ttl",
    "say_on_start", "say_on_delay", "say_on_delay_seconds", "say_on_failure",
]  # fmt: skip


class Trigger(models.TextChoices):
    TEST = "test"
    RULE = "rule"
    TOOL = "tool"
    API = "api"


class CallStatus(models.TextChoices):
    SUCCESS = "success"
    ERROR = "error"
    FAILURE = "failure"
    EXCEPTION = "exception"


class ApiCallLog(TenantOwned):
    """One execution of an endpoint, redacted: nothing here is a secret."""

    endpoint = models.ForeignKey(Endpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    endpoint_name = models.CharField(max_length=200, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.API)
    actor = models.CharField(max_length=300, blank=True, help_text="Who triggered it, as shown at the time")
    method = models.CharField(max_length=7, blank=True)
    url = models.TextField(blank=True, help_text="Redacted")
    request_headers = models.JSONField(default=dict, blank=True, help_text="Redacted")
    status = models.CharField(max_length=10, choices=CallStatus.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_size = models.PositiveIntegerField(default=0)
    cached = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    response_preview = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API call log"
        indexes = [models.Index(fields=["tenant", "-created_at"], name="apicalllog_tenant_created")]

    def __str__(self) -> str:
        return f"{self.method} {self.endpoint_name} → {self.status}"
