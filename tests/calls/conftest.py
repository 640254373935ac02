"""Fixtures of the calls suite: an agent, trunks, and fast timings for workers started by tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import Agent, Call, SipTrunk

# Timings a test worker runs with (read from the environment by config/settings.py).
FAST_ENV = {
    "CALLS_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2,0.2",
    "CALLS_WEBHOOK_TIMEOUT_SECONDS": "1",
    "CALLS_LEASE_MARGIN_SECONDS": "0.5",
    "CALLS_REENQUEUE_AFTER_SECONDS": "0.2",
}
FAST_DIALER = {"ring_seconds": 0.05, "talk_seconds": 0.1, "outcome": "completed"}
PHONE = "+14155552671"


@pytest.fixture
def fast_calls(monkeypatch, settings):
    """Fast retries, timeouts and leases here and in any worker started after this fixture."""
    for name, value in FAST_ENV.items():
        monkeypatch.setenv(name, value)
    settings.CALLS_WEBHOOK_RETRY_SCHEDULE = [float(s) for s in FAST_ENV["CALLS_WEBHOOK_RETRY_SCHEDULE"].split(",")]
    settings.CALLS_WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.CALLS_LEASE_MARGIN_SECONDS = 0.5
    settings.CALLS_REENQUEUE_AFTER_SECONDS = 0.2
    return settings


@pytest.fixture
def calls_worker(fast_calls, celery_worker_process):
    """A real Celery worker running with the fast timings."""
    return celery_worker_process


@pytest.fixture
def make_agent(db):
    def make(tenant, **kwargs) -> Agent:
        fields = {
            "name": "Collections",
            "agent_code": "collections",
            "input_schema": {"fields": ["amount_due", "due_date"], "sample_context": {"amount_due": "10 USD"}},
            **kwargs,
        }
        return Agent.objects.create(tenant=tenant, **fields)

    return make


@pytest.fixture
def make_trunk(db):
    def make(tenant, **kwargs) -> SipTrunk:
        fields = {
            "name": "Main",
            "trunk_phone": "+14155550123",
            "max_cps": 10,
            "max_channels": 10,
            "dialer_config": dict(FAST_DIALER),
            **kwargs,
        }
        return SipTrunk.objects.create(tenant=tenant, **fields)

    return make


@pytest.fixture
def agent(tenant, make_agent) -> Agent:
    return make_agent(tenant)


@pytest.fixture
def trunk(tenant, make_trunk) -> SipTrunk:
    return make_trunk(tenant)


def call_body(agent, trunk, **overrides) -> dict:
    body = {
        "phone_number": PHONE,
        "agent_id": str(agent.pk),
        "sip_trunk_id": str(trunk.pk),
        "metadata": {"amount_due": "10 USD", "due_date": "2026-07-01"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def start_buckets(starts) -> list[list[int]]:
    """A trunk's ring for these start times (epoch seconds): [centisecond, count] pairs, rounded up."""
    counts: dict[int, int] = {}
    for start in starts:
        counts[math.ceil(start * 100)] = counts.get(math.ceil(start * 100), 0) + 1
    return [[c, n] for c, n in sorted(counts.items())]


def age_starts(trunk: SipTrunk, seconds: float) -> None:
    """Move the trunk's recorded starts `seconds` into the past (as if that time had passed)."""
    trunk = SipTrunk.objects.get(pk=trunk.pk)
    ring = [[c - math.ceil(seconds * 100), n] for c, n in trunk.recent_starts]
    last = None if trunk.last_start is None else trunk.last_start - seconds
    SipTrunk.objects.filter(pk=trunk.pk).update(recent_starts=ring, last_start=last)


def verify_like_a_receiver(secret: str, request) -> dict:
    """What a customer's endpoint does, written from SPEC §10 and the Standard Webhooks spec."""
    body = request.body
    expected_hex = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert request.header("X-Switchboard-Signature") == expected_hex
    msg_id, timestamp = request.header("webhook-id"), request.header("webhook-timestamp")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    assert request.header("webhook-signature") == "v1," + base64.b64encode(digest).decode()
    assert abs(int(timestamp) - timezone.now().timestamp()) < 60
    return json.loads(body)


def max_overlap(calls: list[Call]) -> int:
    edges = []
    for call in calls:
        edges.append((call.started_at, 1))
        if call.end_timestamp:
            edges.append((call.end_timestamp, -1))
    live = peak = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        live += step
        peak = max(peak, live)
    return peak


def max_starts_in_one_second(calls: list[Call]) -> int:
    starts = sorted(c.started_at for c in calls)
    return max((sum(1 for s in starts if first <= s < first + timedelta(seconds=1)) for first in starts), default=0)
