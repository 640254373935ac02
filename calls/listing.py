"""Listing calls: GET /integration/v1/calls filters (`filter_calls`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time
from typing import TypeVar

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from calls.models import Call, CallStatus
from calls.validation import CallRequestError
from tenants import scoping
from tenants.models import Tenant

T = TypeVar("T")
FILTERS = ("agent", "agent_id", "sip_trunk_id", "created_after", "created_before", "date")


def _parse(parser: Callable[[str], T | None], value: str) -> T | None:
    try:
        return parser(value)
    except ValueError:  # well formed but impossible, e.g. month 13
        return None


def _moment(param: str, value: str, *, end_of_day: bool) -> datetime:
    # A bare date means the whole UTC day (parse_datetime alone would read it as midnight).
    day = _parse(parse_date, value)
    moment = datetime.combine(day, time.max if end_of_day else time.min) if day else _parse(parse_datetime, value)
    if moment is None:
        raise CallRequestError(f"{param} must be an ISO 8601 date or date-time")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def _uuid(param: str, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CallRequestError(f"{param} must be a UUID") from None


def filter_calls(tenant: Tenant, *, statuses: Sequence[str] = (), **filters: str) -> QuerySet[Call]:
    """The tenant's calls, newest first, narrowed by `statuses` and the `FILTERS` given (empty: no filter).

    `agent` (id or agent_code), `agent_id`, `sip_trunk_id`, `created_after` / `created_before` (date or
    date-time, inclusive), `date` (one UTC day). Raises CallRequestError naming a malformed filter.
    """
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise TypeError(f"unknown call filter(s): {', '.join(unknown)}")
    calls = scoping.for_tenant(Call, tenant).order_by("-created_at", "pk")
    if any(s not in CallStatus.values for s in statuses):
        raise CallRequestError(f"status must be one of: {', '.join(CallStatus.values)}")
    if statuses:
        calls = calls.filter(status__in=statuses)
    if filters.get("agent"):
        try:
            calls = calls.filter(agent_id=uuid.UUID(filters["agent"]))
        except ValueError:
            calls = calls.filter(agent__agent_code=filters["agent"])
    for param in ("agent_id", "sip_trunk_id"):
        if filters.get(param):
            calls = calls.filter(**{param: _uuid(param, filters[param])})
    bounds = [("created_after", "gte", False), ("created_before", "lte", True)]
    if filters.get("date"):
        if _parse(parse_date, filters["date"]) is None:
            raise CallRequestError("date must be an ISO 8601 date (YYYY-MM-DD)")
        bounds += [("date", "gte", False), ("date", "lte", True)]
    for param, lookup, end in bounds:
        if filters.get(param):
            calls = calls.filter(**{f"created_at__{lookup}": _moment(param, filters[param], end_of_day=end)})
    return calls
