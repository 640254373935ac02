"""`switchboard_campaign_rows`: rows of running and paused campaigns by campaign and row status, read from the
database at scrape time — in this process's test transaction and, over real HTTP, from committed rows."""

from __future__ import annotations

import urllib.request

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from campaigns import metrics
from campaigns.models import CampaignStatus, RowStatus
from tests.support.campaigns import rows_in_statuses
from tests.support.metrics import Samples, scrape

ROWS = "switchboard_campaign_rows"


@pytest.fixture
def campaigns_in_every_status(make_campaign):
    rows_in_statuses(make_campaign(name="Draft", status=CampaignStatus.DRAFT), {"pending": 4})
    rows_in_statuses(
        make_campaign(name="Running", status=CampaignStatus.RUNNING),
        {"pending": 5, "calling": 2, "completed": 3, "failed": 1, "skipped": 1},
    )
    rows_in_statuses(make_campaign(name="Also running", status=CampaignStatus.RUNNING), {"pending": 1, "completed": 2})
    rows_in_statuses(make_campaign(name="Paused", status=CampaignStatus.PAUSED), {"pending": 6, "completed": 1})
    rows_in_statuses(make_campaign(name="Done", status=CampaignStatus.COMPLETED), {"completed": 50, "failed": 7})
    rows_in_statuses(make_campaign(name="Stopped", status=CampaignStatus.CANCELLED), {"skipped": 9})


EXPECTED = {
    ("running", "pending"): 6,
    ("running", "calling"): 2,
    ("running", "completed"): 5,
    ("running", "failed"): 1,
    ("running", "skipped"): 1,
    ("paused", "pending"): 6,
    ("paused", "completed"): 1,
}


def assert_rows(samples: Samples) -> None:
    for campaign_status in ("running", "paused"):
        for status in RowStatus.values:
            got = samples.get(ROWS, campaign_status=campaign_status, status=status)
            assert got == EXPECTED.get((campaign_status, status), 0), (campaign_status, status, got)
    # drafts and finished campaigns are not read: no series, however many rows they hold
    for campaign_status in ("draft", "completed", "cancelled"):
        assert f'campaign_status="{campaign_status}"' not in samples.text


@pytest.mark.django_db
def test_rows_of_running_and_paused_campaigns_by_status(campaigns_in_every_status):
    assert_rows(scrape(Client()))


@pytest.mark.django_db
def test_the_gauge_is_one_query_with_every_series_present(campaigns_in_every_status):
    with CaptureQueriesContext(connection) as queries:
        values = dict(metrics.rows_by_status())
    assert len(queries) == 1
    assert len(values) == 10 and values[("running", "pending")] == 6 and values[("paused", "calling")] == 0


@pytest.mark.django_db
def test_with_no_campaign_every_series_reads_zero():
    samples = scrape(Client())
    assert samples.get(ROWS, campaign_status="running", status="pending") == 0
    assert f"{ROWS}{{" in samples.text  # present (zeros), so alerts on it never see a missing series


@pytest.mark.django_db(transaction=True)
def test_a_scrape_over_http_counts_committed_rows(campaigns_in_every_status, live_server):
    with urllib.request.urlopen(f"{live_server.url}/metrics", timeout=10) as response:
        assert response.status == 200
        assert_rows(Samples(response.read().decode()))
