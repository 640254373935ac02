"""What the list endpoints read: GET /integration/v1/calls filters (`filter_calls`), and an agent's tool
ids selected with the agent (`with_tool_ids`) for GET /api/v1/agents."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time
from typing import Any, TypeVar

from django.db import NotSupportedError
from django.db.models import Expression, Field, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from calls.models import Agent, Call, CallStatus
from calls.validation import CallRequestError
from integrations.models import Connection, Endpoint
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


class ToolIds(Expression):
    """The ids of an agent's tools as one column of the agent's own row (PostgreSQL and SQLite), so a
    list is one query instead of two with no prefetch machinery per agent. Written as SQL from the
    models' table and column names: building and compiling the same subquery with the ORM on every
    request cost about as much as the query itself. Ordered like Endpoint's Meta.ordering
    (connection name, then name), the order `agent.tools.all()` gives."""

    output_field = Field()

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        raise NotSupportedError(f"tool ids are selected on PostgreSQL and SQLite, not {connection.vendor}")

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        return f"ARRAY({_select_tool_ids(compiler, connection)})", ()

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        # json_group_array aggregates the ordered derived table in its order.
        select = _select_tool_ids(compiler, connection)
        return f"(SELECT json_group_array(tool.id) FROM ({select}) tool)", ()  # noqa: S608 — names are ours

    def get_db_converters(self, connection: Any) -> list[Callable[..., Any]]:
        return [_as_uuids]


def _select_tool_ids(compiler: Any, connection: Any) -> str:
    q = connection.ops.quote_name
    relation: Any = Agent._meta.get_field("tools")
    through = relation.remote_field.through._meta
    endpoint, owner = Endpoint._meta, Endpoint._meta.get_field("connection")  # the ForeignKey to Connection
    agent_id = f"{compiler.quote_name_unless_alias(compiler.query.base_table)}.{q(Agent._meta.pk.column)}"
    tool_id = f"t.{q(relation.m2m_reverse_name())}"
    joins = (
        f"{q(through.db_table)} t JOIN {q(endpoint.db_table)} e ON e.{q(endpoint.pk.column)} = {tool_id} "
        f"JOIN {q(Connection._meta.db_table)} c ON c.{q(Connection._meta.pk.column)} = e.{q(owner.column)}"
    )
    where = f"t.{q(relation.m2m_column_name())} = {agent_id} ORDER BY c.{q('name')}, e.{q('name')}"
    return f"SELECT {tool_id} AS id FROM {joins} WHERE {where}"  # noqa: S608 — the models' own names, quoted


def _as_uuids(value: Any, expression: Any, connection: Any) -> list[uuid.UUID]:
    if isinstance(value, str):  # SQLite: a JSON array of the ids' 32 hex digits
        value = json.loads(value)
    return [item if isinstance(item, uuid.UUID) else uuid.UUID(item) for item in value or ()]


def with_tool_ids(agents: QuerySet[Agent]) -> QuerySet[Agent]:
    """`agents`, each with `tool_ids` (read by AgentSerializer's `tools`)."""
    return agents.annotate(**{TOOL_IDS: ToolIds()})
