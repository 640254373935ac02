"""Campaign rows in given statuses, written straight to the table (no import, no dispatch): for the
figures that count them (the dashboard's chart, the `/metrics` gauge)."""

from __future__ import annotations

from campaigns.models import Campaign, CampaignRow


def rows_in_statuses(campaign: Campaign, counts: dict[str, int]) -> None:
    """`counts[status]` rows in each status, numbered from 1, with distinct phone numbers."""
    statuses = [status for status, n in counts.items() for _ in range(n)]
    CampaignRow.objects.bulk_create(
        CampaignRow(tenant=campaign.tenant, campaign=campaign, row=i, phone_number=f"+1415555{i:04d}", status=status)
        for i, status in enumerate(statuses, start=1)
    )
