"""The admin's first page (SPEC §17): per-tenant figures, one query per chart, scoped to the user's tenants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from adminsite import dashboard
from calls.models import CallStatus
from campaigns.models import Campaign, CampaignStatus
from integrations.models import Connection
from tenants.models import Role
from tests.adminsite.conftest import add_campaigns

PASSWORD = "pw-for-tests-1"


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_figures_per_chart(tenant, other_tenant, seed_dashboard):
    now = timezone.now()
    seed_dashboard(tenant, now)
    seed_dashboard(other_tenant, now)  # another tenant's activity never shows
    with CaptureQueriesContext(connection) as queries:
        board = dashboard.build(tenant, now=now)
    assert len(queries) == 5  # one per chart

    assert len(board.days) == 14 and board.days[-1] == timezone.localdate(now)
    completed = board.calls_by_day[CallStatus.COMPLETED]
    assert completed[-1] == 3 and completed[-2] == 2 and completed[-4] == 4 and completed[-7] == 1 and completed[0] == 2
    assert sum(completed) == 12
    assert list(board.calls_by_day) == [
        CallStatus.RINGING,
        CallStatus.COMPLETED,
        CallStatus.DECLINE,
        CallStatus.SIP_CALL_FAILED,
    ]
    assert board.outcomes == [
        ("interested", 7),
        ("SIP Call Failed", 2),
        ("callback_requested", 2),
        ("not_interested", 2),
        ("Decline", 1),
        ("completed (no outcome)", 1),
    ]
    billing, crm = board.connections
    assert (billing.name, billing.requests, billing.errors, billing.p50_ms, billing.p95_ms) == (
        "Billing API",
        11,
        1,
        60,
        900,
    )
    assert round(billing.error_rate, 3) == 0.091
    assert (crm.name, crm.requests, crm.errors, crm.p50_ms, crm.p95_ms) == ("CRM", 2, 0, 200, 300)
    assert board.deliveries == {"pending": 2, "delivered": 7, "failed": 1}
    assert board.delivery_success_rate == 7 / 8
    # running campaigns only, newest first, every row status present
    assert [(c.name, c.rows) for c in board.campaigns] == [
        ("Win-back", {"completed": 1, "failed": 0, "skipped": 0, "calling": 0, "pending": 3}),
        ("Spring renewals", {"completed": 6, "failed": 2, "skipped": 1, "calling": 1, "pending": 10}),
    ]
    spring = board.campaigns[1]
    assert (spring.total, spring.done, spring.share_done) == (20, 9, 0.45)


def test_campaign_progress_draws_the_newest_running_campaigns_even_without_rows(tenant, seed_dashboard):

    now = timezone.now()
    seed_dashboard(tenant, now)
    spring = Campaign.objects.get(tenant=tenant, name="Spring renewals")
    for i in range(dashboard.MAX_CAMPAIGNS):
        Campaign.objects.create(
            tenant=tenant,
            name=f"Empty {i}",
            agent=spring.agent,
            sip_trunk=spring.sip_trunk,
            status=CampaignStatus.RUNNING,
            created_at=now - timedelta(minutes=45, seconds=i),
        )
    with CaptureQueriesContext(connection) as queries:
        progress = dashboard.campaign_progress(tenant)
    assert len(queries) == 1
    names = [c.name for c in progress]
    assert len(names) == dashboard.MAX_CAMPAIGNS
    assert names[:3] == ["Win-back", "Empty 0", "Empty 1"] and "Spring renewals" not in names
    assert progress[1].total == 0 and progress[1].share_done == 0.0


def test_an_empty_tenant_has_an_empty_dashboard(tenant):
    board = dashboard.build(tenant)
    assert board.calls_by_day == {} and board.outcomes == [] and board.connections == []
    assert board.campaigns == []
    assert board.delivery_success_rate is None


def test_the_admin_index_is_the_dashboard_of_the_users_tenant(tenant, other_tenant, seed_dashboard, make_staff_user):
    seed_dashboard(tenant)
    seed_dashboard(other_tenant)
    client = logged_in(make_staff_user("olga", tenant, Role.VIEWER))
    page = client.get("/admin/").content.decode()
    assert "Acme — the last 14 days" in page
    for chart in ("chart-calls", "chart-outcomes", "chart-api", "chart-webhooks", "chart-campaigns"):
        assert f'id="{chart}"' in page
    assert page.count("<svg") >= 6
    assert "<title>Billing API: p95 900 ms</title>" in page
    assert 'id="delivery-rate">87.5%<' in page
    campaigns = page[page.index('id="chart-campaigns"') :]
    assert "<title>Spring renewals · failed: 2</title>" in campaigns
    assert "9 of 20 (45%) done" in campaigns  # beside the bar
    assert (
        "<td>Spring renewals</td><td>6</td><td>2</td><td>1</td><td>1</td><td>10</td><td>9 of 20 (45%)</td>" in campaigns
    )
    assert "Paused list" not in page and "Last winter" not in page
    # another tenant cannot be chosen by slug: the user's own stays shown, and nothing names Globex
    page = client.get(f"/admin/?tenant={other_tenant.slug}").content.decode()
    assert "Acme — the last 14 days" in page and "Globex" not in page


def test_a_member_of_two_tenants_chooses_which(tenant, other_tenant, seed_dashboard, make_staff_user):
    seed_dashboard(other_tenant)
    user = make_staff_user("olga", tenant, Role.ADMIN)
    user.memberships.create(tenant=other_tenant, role=Role.VIEWER)
    client = logged_in(user)
    first = client.get("/admin/").content.decode()
    assert "Acme — the last 14 days" in first and "No calls in the last 14 days." in first
    assert "No running campaigns." in first
    chosen = client.get(f"/admin/?tenant={other_tenant.slug}").content.decode()
    assert "Globex — the last 14 days" in chosen and 'id="chart-calls"' in chosen and "<title>" in chosen


def test_tenant_text_in_charts_is_escaped(tenant, seed_dashboard, make_staff_user):
    seed_dashboard(tenant)
    Connection.objects.filter(tenant=tenant, name="CRM").update(name="<script>alert(1)</script>")
    Campaign.objects.filter(tenant=tenant, name="Win-back").update(name='<script>alert("c")</script>')
    page = logged_in(make_staff_user("olga", tenant, Role.VIEWER)).get("/admin/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    campaigns = page[page.index('id="chart-campaigns"') :]
    assert "<title>&lt;script&gt;alert(&quot;c&quot;)&lt;/script&gt; · completed: 1</title>" in campaigns
    assert "<td>&lt;script&gt;alert(&quot;c&quot;)&lt;/script&gt;</td>" in campaigns


def test_the_whole_page_costs_the_same_queries_however_much_data(
    tenant, other_tenant, seed_dashboard, make_staff_user, django_assert_max_num_queries
):
    user = make_staff_user("olga", tenant, Role.ADMIN)
    user.memberships.create(tenant=other_tenant, role=Role.VIEWER)
    client = logged_in(user)
    seed_dashboard(tenant)
    with CaptureQueriesContext(connection) as small:
        assert client.get(f"/admin/?tenant={tenant.slug}").status_code == 200
    spring = Campaign.objects.get(tenant=tenant, name="Spring renewals")
    seed_dashboard(tenant)  # twice the calls, logs and deliveries
    more = [(f"Batch {i}", CampaignStatus.RUNNING, i, {"pending": 30, "completed": 20}) for i in range(8)]
    add_campaigns(tenant, spring.agent, spring.sip_trunk, timezone.now(), more)
    with django_assert_max_num_queries(len(small)) as large:
        page = client.get(f"/admin/?tenant={tenant.slug}").content.decode()
    campaigns = page[page.index('id="chart-campaigns"') :]
    assert "Batch 7" in campaigns and "Spring renewals" not in campaigns  # the ten newest are drawn
    assert len(large) == len(small) <= 16  # session, user, 2FA device, memberships, permissions, five charts


@pytest.mark.parametrize("value", [0, 1, 7, 10, 11, 99, 250, 1001])
def test_axis_maximum_is_round_and_covers_the_value(value):
    from adminsite.charts import nice_max

    top = nice_max(value)
    assert top >= max(value, 1)
    assert str(top).rstrip("0") in ("1", "2", "5")


def test_staff_without_a_tenant_gets_the_index_without_a_dashboard(make_staff_user):
    page = logged_in(make_staff_user("nobody")).get("/admin/")
    assert page.status_code == 200 and 'id="dashboard"' not in page.content.decode()
