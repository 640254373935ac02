"""Dashboard data: calls over several days, API call logs on two connections, webhook deliveries,
campaigns in every status (two running)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import Agent, Call, CallStatus, DeliveryStatus, SipTrunk, WebhookDelivery
from campaigns.models import Campaign, CampaignStatus
from integrations.models import ApiCallLog, Connection, Endpoint
from integrations.models import CallStatus as ExecutionStatus
from tests.support.campaigns import rows_in_statuses


def _calls(tenant, now) -> tuple[Agent, SipTrunk]:
    agent = Agent.objects.create(tenant=tenant, name="Collections", agent_code=f"a-{uuid.uuid4().hex[:6]}")
    trunk = SipTrunk.objects.create(tenant=tenant, name="Main", trunk_phone="+14155550123")
    plan = [  # (days ago, status, disposition or None, how many)
        (0, CallStatus.COMPLETED, "interested", 3),
        (0, CallStatus.RINGING, None, 1),
        (1, CallStatus.COMPLETED, "not_interested", 2),
        (1, CallStatus.DECLINE, None, 1),
        (3, CallStatus.COMPLETED, "interested", 4),
        (3, CallStatus.SIP_CALL_FAILED, None, 2),
        (6, CallStatus.COMPLETED, None, 1),
        (13, CallStatus.COMPLETED, "callback_requested", 2),
        (20, CallStatus.COMPLETED, "interested", 5),  # outside the 14 days: not counted
    ]
    for days_ago, status, disposition, count in plan:
        for _ in range(count):
            Call.objects.create(
                tenant=tenant,
                agent=agent,
                sip_trunk=trunk,
                phone_number="+14155552671",
                status=status,
                created_at=now - timedelta(days=days_ago),
                call_outcome={"disposition": disposition, "summary": "…"} if disposition else None,
            )
    call = Call.objects.filter(tenant=tenant).first()
    for status, count, days_ago in [
        (DeliveryStatus.DELIVERED, 7, 1),
        (DeliveryStatus.FAILED, 1, 2),
        (DeliveryStatus.PENDING, 2, 0),
        (DeliveryStatus.DELIVERED, 9, 30),
    ]:
        for _ in range(count):
            WebhookDelivery.objects.create(
                tenant=tenant,
                call=call,
                event="call.completed",
                url="https://hooks.example/calls",
                payload="{}",
                webhook_id=f"msg_{uuid.uuid4().hex}",
                status=status,
                created_at=now - timedelta(days=days_ago),
            )
    return agent, trunk


# (name, status, minutes before now it was created, rows per status); the running ones are drawn, newest first
CAMPAIGNS = [
    ("Spring renewals", CampaignStatus.RUNNING, 60, {"completed": 6, "failed": 2, "skipped": 1, "calling": 1, "pending": 10}),
    ("Win-back", CampaignStatus.RUNNING, 30, {"completed": 1, "pending": 3}),
    ("Paused list", CampaignStatus.PAUSED, 20, {"pending": 5}),
    ("Last winter", CampaignStatus.COMPLETED, 90, {"completed": 8}),
    ("Next draft", CampaignStatus.DRAFT, 10, {"pending": 2}),
]  # fmt: skip


def add_campaigns(tenant, agent, trunk, now, campaigns=CAMPAIGNS) -> None:
    for name, status, minutes_ago, counts in campaigns:
        campaign = Campaign.objects.create(
            tenant=tenant,
            name=name,
            agent=agent,
            sip_trunk=trunk,
            status=status,
            created_at=now - timedelta(minutes=minutes_ago),
        )
        rows_in_statuses(campaign, counts)


def _api_logs(tenant, now) -> None:
    for name, durations, failures in [
        ("Billing API", [*range(10, 110, 10), 900], 1),  # 11 calls: p50 = 60 ms, p95 = 900 ms
        ("CRM", [200, 300], 0),
    ]:
        connection = Connection.objects.create(tenant=tenant, name=name, base_url="https://api.example")
        endpoint = Endpoint.objects.create(
            tenant=tenant, connection=connection, name="Lookup", tool_name=f"lookup_{uuid.uuid4().hex[:6]}"
        )
        for i, duration in enumerate(durations):
            ApiCallLog.objects.create(
                tenant=tenant,
                endpoint=endpoint,
                endpoint_name="Lookup",
                status=ExecutionStatus.ERROR if i < failures else ExecutionStatus.SUCCESS,
                duration_ms=duration,
                created_at=now - timedelta(hours=2),
            )
        ApiCallLog.objects.create(  # yesterday's: outside the 24 hours
            tenant=tenant,
            endpoint=endpoint,
            status=ExecutionStatus.SUCCESS,
            duration_ms=5000,
            created_at=now - timedelta(hours=30),
        )


@pytest.fixture
def seed_dashboard(db):
    def seed(tenant, now=None) -> None:
        now = now or timezone.now()
        agent, trunk = _calls(tenant, now)
        _api_logs(tenant, now)
        add_campaigns(tenant, agent, trunk, now)

    return seed
