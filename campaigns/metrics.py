"""The campaigns app's database gauge for `/metrics` (see tenants.metrics.register_gauge).

`switchboard_campaign_rows{campaign_status, status}`: the rows of running and paused campaigns by row
status — the backlog still to call and where it stands. Rows of drafts (all pending, possibly for
weeks) and of completed or cancelled campaigns do not move and are not read, so a scrape costs the rows
in play, not the whole history: one grouped query, the campaigns found by their `status` index and
their rows counted on the `campaign_row_due` index (`campaign, status, …`). No tenant label, like the
calls gauges: the series stay a fixed ten however many tenants there are; per tenant, the dashboard
shows each running campaign's progress.
"""

from __future__ import annotations

from django.db.models import Count, QuerySet

from campaigns.models import CampaignRow, CampaignStatus, RowStatus
from tenants import metrics

IN_PLAY = (CampaignStatus.RUNNING, CampaignStatus.PAUSED)


def rows_by_status() -> list[tuple[tuple[str, ...], float]]:
    """Every (campaign status, row status) pair of running and paused campaigns, zeros included."""
    counts = {(campaign_status, status): n for campaign_status, status, n in rows_query()}
    return [
        ((campaign_status, status), counts.get((campaign_status, status), 0))
        for campaign_status in IN_PLAY
        for status in RowStatus.values
    ]


def rows_query() -> QuerySet[CampaignRow, tuple[str, str, int]]:
    return (
        CampaignRow.objects.filter(campaign__status__in=IN_PLAY)
        .values_list("campaign__status", "status")
        # COUNT(status), not COUNT(id): the index holds the status, so the rows need not be read.
        .annotate(n=Count("status"))
        .order_by()
    )


def register() -> None:
    metrics.register_gauge(
        "switchboard_campaign_rows",
        "Rows of running and paused campaigns, by the campaign's status and the row's",
        ["campaign_status", "status"],
        rows_by_status,
    )
