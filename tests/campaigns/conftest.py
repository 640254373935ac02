"""Fixtures of the campaigns suite: an agent and a fast simulated trunk, a customer API on 127.0.0.1,
endpoints on it, and helpers to drive a campaign without a worker (`drive`)."""

from __future__ import annotations

import pytest

from calls.models import Agent, SipTrunk
from campaigns import dispatch, lifecycle
from campaigns.models import Campaign, CampaignRow, CampaignStatus
from integrations.models import Connection, Endpoint
from tests.calls.conftest import FAST_DIALER, FAST_ENV

ALL_DAY = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
FAST_RETRY = {"max_retries": 0, "base_delay": 0.01, "max_delay": 0.05}


@pytest.fixture
def fast_calls(monkeypatch, settings):
    """The calls suite's fast timings, plus a short row lease (a dead worker's row is retaken in 1 s),
    here and in any worker started after this fixture."""
    for name, value in {**FAST_ENV, "CAMPAIGN_ROW_LEASE_SECONDS": "1"}.items():
        monkeypatch.setenv(name, value)
    settings.CALLS_WEBHOOK_RETRY_SCHEDULE = [float(s) for s in FAST_ENV["CALLS_WEBHOOK_RETRY_SCHEDULE"].split(",")]
    settings.CALLS_WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.CALLS_LEASE_MARGIN_SECONDS = 0.5
    settings.CALLS_REENQUEUE_AFTER_SECONDS = 0.2
    settings.CAMPAIGN_ROW_LEASE_SECONDS = 1.0
    return settings


@pytest.fixture
def calls_worker(fast_calls, celery_worker_process):
    """A real Celery worker running with the fast timings."""
    return celery_worker_process


@pytest.fixture
def agent(tenant) -> Agent:
    return Agent.objects.create(
        tenant=tenant, name="Appointments", agent_code="appointments", input_schema={"fields": ["customer_id"]}
    )


@pytest.fixture
def trunk(tenant) -> SipTrunk:
    return SipTrunk.objects.create(
        tenant=tenant, name="Main", trunk_phone="+14155550123", max_cps=50, max_channels=50, dialer_config=FAST_DIALER
    )


@pytest.fixture
def connection(tenant, http_server) -> Connection:
    return Connection.objects.create(
        tenant=tenant, name="Customer API", base_url=http_server.base_url, retry=FAST_RETRY
    )


@pytest.fixture
def make_endpoint(connection):
    def make(**fields) -> Endpoint:
        fields.setdefault("name", fields.get("tool_name", "lookup"))
        fields.setdefault("tool_name", fields["name"])
        return Endpoint.objects.create(tenant=connection.tenant, connection=connection, **fields)

    return make


@pytest.fixture
def make_campaign(tenant, agent, trunk):
    def make(**fields) -> Campaign:
        fields = {"name": "Spring", "agent": agent, "sip_trunk": trunk, "calling_window": ALL_DAY, **fields}
        return Campaign.objects.create(tenant=tenant, **fields)

    return make


def add_rows(campaign: Campaign, *rows: dict):
    from campaigns.importing import import_rows

    return import_rows(campaign, list(rows))


def drive(campaign: Campaign, *, rounds: int = 20) -> Campaign:
    """Run the dispatcher, the dial tasks and the simulated calls inline until nothing moves."""
    from calls.dialing import advance_call
    from calls.models import LIVE_STATUSES, Call

    for _ in range(rounds):
        dispatch.dispatch_campaign(campaign.pk)
        for row in CampaignRow.objects.filter(campaign=campaign, status="calling"):
            dispatch.dial_row(row.pk)
        for call in Call.objects.filter(status__in=LIVE_STATUSES, tenant=campaign.tenant):
            advance_call(call.pk)
        for row in CampaignRow.objects.filter(campaign=campaign, status="calling", call__isnull=False):
            lifecycle.finish_row(row.pk, row.call_id)
        campaign.refresh_from_db()
        if campaign.status != CampaignStatus.RUNNING:
            break
    return campaign
