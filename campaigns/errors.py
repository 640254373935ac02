"""Domain errors of campaigns: a code for the API to map to a status, and the sentence to show."""

from __future__ import annotations


class CampaignError(Exception):
    """`code`: invalid (400), not_found (404), conflict (409), too_large (413); `field` when one is to blame."""

    def __init__(self, message: str, code: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
