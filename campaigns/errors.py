"""Domain errors of campaigns: a code (tenants.errors.ErrorCode) the API maps to a status, the sentence
to show, and the field to blame when there is one (for the serializer's details)."""

from __future__ import annotations

from tenants.errors import DomainError, ErrorCode


class CampaignError(DomainError):
    def __init__(self, message: str, code: ErrorCode = ErrorCode.INVALID, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field
