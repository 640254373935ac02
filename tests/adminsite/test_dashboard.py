"""The admin's first page (SPEC §17): per-tenant figures, one query per chart, scoped to the user's tenants."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from adminsite import dashboard
from calls.models import CallStatus
from tenants.models import Role

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
    assert len(queries) == 4  # one per chart

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


def test_an_empty_tenant_has_an_empty_dashboard(tenant):
    board = dashboard.build(tenant)
    assert board.calls_by_day == {} and board.outcomes == [] and board.connections == []
    assert board.delivery_success_rate is None


def test_the_admin_index_is_the_dashboard_of_the_users_tenant(tenant, other_tenant, seed_dashboard, make_staff_user):
    seed_dashboard(tenant)
    seed_dashboard(other_tenant)
    client = logged_in(make_staff_user("olga", tenant, Role.VIEWER))
    page = client.get("/admin/").content.decode()
    assert "Acme — the last 14 days" in page
    for chart in ("chart-calls", "chart-outcomes", "chart-api", "chart-webhooks"):
        assert f'id="{chart}"' in page
    assert page.count("<svg") >= 5
    assert "<title>Billing API: p95 900 ms</title>" in page
    assert 'id="delivery-rate">87.5%<' in page
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
    chosen = client.get(f"/admin/?tenant={other_tenant.slug}").content.decode()
    assert "Globex — the last 14 days" in chosen and 'id="chart-calls"' in chosen and "<title>" in chosen


def test_tenant_text_in_charts_is_escaped(tenant, seed_dashboard, make_staff_user):
    seed_dashboard(tenant)
    from integrations.models import Connection

    Connection.objects.filter(tenant=tenant, name="CRM").update(name="<script>alert(1)</script>")
    page = logged_in(make_staff_user("olga", tenant, Role.VIEWER)).get("/admin/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("value", [0, 1, 7, 10, 11, 99, 250, 1001])
def test_axis_maximum_is_round_and_covers_the_value(value):
    from adminsite.charts import nice_max

    top = nice_max(value)
    assert top >= max(value, 1)
    assert str(top).rstrip("0") in ("1", "2", "5")


def test_staff_without_a_tenant_gets_the_index_without_a_dashboard(make_staff_user):
    page = logged_in(make_staff_user("nobody")).get("/admin/")
    assert page.status_code == 200 and 'id="dashboard"' not in page.content.decode()
