"""What the list endpoints read: GET /integration/v1/calls filters (`filter_calls`), and an agent's tool
ids selected with the agent (`with_tool_ids`) for GET /api/v1/agents."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time
from typing import Any, TypeVar

from django.db.models import Field, OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from calls.models import Agent, Call, CallStatus
from calls.validation import CallRequestError
from integrations.models import Endpoint
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


TOOL_IDS = "tool_ids"
ENDPOINT_ORDER: list[Any] = list(Endpoint._meta.ordering or ())


class ToolIds(Subquery):
    """The ids of an agent's tools as one column of the agent's own row, in the order of Endpoint's
    Meta.ordering: a list read one query instead of two (and no prefetch machinery per agent)."""

    def __init__(self) -> None:
        endpoints = Endpoint.objects.filter(agents=OuterRef("pk")).order_by(*ENDPOINT_ORDER)
        super().__init__(endpoints.values("id"), output_field=Field())

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        return self.as_sql(compiler, connection, template="ARRAY(%(subquery)s)", **extra_context)

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        # json_group_array aggregates the ordered derived table in its order.
        template = "(SELECT json_group_array(tool.id) FROM (%(subquery)s) tool)"
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def get_db_converters(self, connection: Any) -> list[Callable[..., Any]]:
        return [_as_uuids]


def _as_uuids(value: Any, expression: Any, connection: Any) -> list[uuid.UUID]:
    if isinstance(value, str):  # SQLite: a JSON array of the ids' 32 hex digits
        value = json.loads(value)
    return [item if isinstance(item, uuid.UUID) else uuid.UUID(item) for item in value or ()]


# Built once: annotate() resolves a copy, and building the subquery's queryset cost as much as running it.
_TOOL_IDS = ToolIds()


def with_tool_ids(agents: QuerySet[Agent]) -> QuerySet[Agent]:
    """`agents`, each with `tool_ids` (read by AgentSerializer's `tools`)."""
    return agents.annotate(**{TOOL_IDS: _TOOL_IDS})
