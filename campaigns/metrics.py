"""The campaigns app's database gauge for `/metrics` (see tenants.metrics.register_gauge).

`switchboard_campaign_rows{campaign_status, status}`: the rows of campaigns not yet finished (draft,
running, paused) by row status — the backlog still to call and where it stands. Rows of completed and
cancelled campaigns no longer change and are not read, so a scrape costs the rows still in play, not
the whole history: one grouped query, the campaigns found by their `status` index and their rows
counted on the `campaign_row_due` index (`campaign, status, …`). No tenant label, like the calls
gauges: the series stay a fixed fifteen however many tenants there are; per tenant, the dashboard shows
each running campaign's progress.
"""

from __future__ import annotations

from django.db.models import Count

from campaigns.models import CampaignRow, CampaignStatus, RowStatus
from tenants import metrics

NOT_FINISHED = (CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.PAUSED)


def rows_by_status() -> list[tuple[tuple[str, ...], float]]:
    """Every (campaign status, row status) pair of unfinished campaigns, zeros included."""
    counts = {
        (campaign_status, status): n
        for campaign_status, status, n in CampaignRow.objects.filter(campaign__status__in=NOT_FINISHED)
        .values_list("campaign__status", "status")
        # COUNT(status), not COUNT(id): the index holds the status, so the rows need not be read.
        .annotate(n=Count("status"))
        .order_by()
    }
    return [
        ((campaign_status, status), counts.get((campaign_status, status), 0))
        for campaign_status in NOT_FINISHED
        for status in RowStatus.values
    ]


def register() -> None:
    metrics.register_gauge(
        "switchboard_campaign_rows",
        "Rows of campaigns not yet finished, by the campaign's status and the row's",
        ["campaign_status", "status"],
        rows_by_status,
    )
