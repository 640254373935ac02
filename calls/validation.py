"""Validation of calls' inputs, shared by the REST serializers, the admin forms and the services.

- `validate_call_request(tenant, data)` checks a POST /integration/v1/calls body in SPEC §9's order
  and raises `CallRequestError` with the exact public message;
- `normalise_e164(value)` is the one definition of a phone number the product accepts;
- `clean_trunk_phone`, `clean_dialer_settings`, `clean_input_schema` and `TRUNK_LIMITS` are the save-time
  checks of trunks and agents: each raises Django's `ValidationError`, which DRF serializers and
  Django forms both report on the field.
- `clean_analysis`, `clean_verification`, `clean_template`, `clean_bound`: an agent's runtime settings
  (SPEC §14), raising django's ValidationError with one clear sentence (serializer and admin alike).
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import connection

from calls import dnc
from calls.dialers import DialerConfigError, UnknownDialer, clean_settings
from calls.models import ActiveStatus, Agent, DoNotCallEntry, SipTrunk
from integrations import http, templating
from tenants import db
from tenants.errors import DomainError, ErrorCode
from tenants.models import Tenant

CALL_FIELDS = ("phone_number", "agent_id", "sip_trunk_id", "metadata", "callback_url")
_E164_CHARS = re.compile(r"^\+[0-9 ().\-]+$")
MAX_SCHEMA_FIELDS = 100
# (least, most): 0 would make a trunk that refuses every call.
TRUNK_LIMITS = {"max_cps": (1, 1000), "max_channels": (1, 100_000)}


class CallRequestError(DomainError):
    """A call request (or a call listing) that cannot be answered: the exact public `message` and a code."""


def normalise_e164(value: Any) -> str | None:
    """The number in E.164 (`+14155552671`) if `value` is a valid international number, else None.

    Only numbers written with their `+` country code are accepted; spaces, dots, dashes and brackets
    between digits are tolerated and dropped.
    """
    if not isinstance(value, str) or not _E164_CHARS.match(value.strip()):
        return None
    try:
        number = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _callback_url(value: Any) -> str:
    message = "callback_url must be a valid http or https URL"
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > 2000:
        raise CallRequestError(message)
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallRequestError(message)
    try:
        http.check_url(value.strip())
    except http.DestinationNotAllowed as exc:
        raise CallRequestError(f"callback_url is not allowed: {exc}") from None
    except http.OutboundError:
        raise CallRequestError(message) from None
    return value.strip()


def clean_trunk_phone(value: Any) -> str:
    """A trunk's caller id in E.164; ValidationError otherwise."""
    normalised = normalise_e164(value)
    if normalised is None:
        raise ValidationError("trunk_phone must be in E.164 format, e.g. +14155552671")
    return normalised


def clean_dialer_settings(dialer: str, config: Any, secrets: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trunk's `(dialer_config, dialer_secrets)` as back end `dialer` normalises them (`secrets` is the
    merged map that will be stored); a ValidationError naming the wrong one otherwise (raised from a
    serializer's or a form's whole-object check, so it names its field)."""
    try:
        return clean_settings(dialer, config, secrets)
    except (DialerConfigError, UnknownDialer) as exc:
        raise ValidationError({getattr(exc, "field", "dialer_config"): [str(exc)]}) from None


def clean_input_schema(value: Any) -> dict[str, Any]:
    """`{"fields": [unique non-empty names], "sample_context": {...}}`; ValidationError otherwise."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValidationError("input_schema must be an object with fields and sample_context")
    unknown = sorted(set(value) - {"fields", "sample_context"})
    if unknown:
        raise ValidationError(f"unknown key(s) in input_schema: {', '.join(unknown)}")
    fields = value.get("fields")
    fields = [] if fields is None else fields
    if not isinstance(fields, list) or not all(isinstance(f, str) and f.strip() for f in fields):
        raise ValidationError("input_schema.fields must be a list of non-empty names")
    fields = [f.strip() for f in fields]
    if len(fields) > MAX_SCHEMA_FIELDS or any(len(f) > 100 for f in fields):
        raise ValidationError(f"input_schema.fields holds at most {MAX_SCHEMA_FIELDS} names of ≤ 100 chars")
    if len(set(fields)) != len(fields):
        raise ValidationError("input_schema.fields must not repeat a name")
    sample = value.get("sample_context")
    sample = {} if sample is None else sample
    if not isinstance(sample, dict):
        raise ValidationError("input_schema.sample_context must be an object")
    return {"fields": fields, "sample_context": sample}


@dataclass
class CallRequest:
    phone_number: str
    agent: Agent
    # Loaded with its id, tenant and status only (other fields load on access): admission reads the
    # trunk's limits and counters itself, in the statement that takes a channel.
    sip_trunk: SipTrunk
    metadata: dict[str, Any]
    callback_url: str


def validate_call_request(tenant: Tenant, data: Any) -> CallRequest:
    """Check a POST /calls body in the order of SPEC §9; raise CallRequestError with the exact message.

    The agent, the trunk's status and the do-not-call entry are read in one query; the checks on them
    still answer in SPEC order.
    """
    if not isinstance(data, dict):
        raise CallRequestError("Request body must be a JSON object")
    unknown = sorted(set(data) - set(CALL_FIELDS))
    if unknown:
        raise CallRequestError(f"Unknown field(s): {', '.join(unknown)}")
    if data.get("phone_number") in (None, ""):
        raise CallRequestError("phone_number is required")
    phone_number = normalise_e164(data["phone_number"])
    if phone_number is None:
        raise CallRequestError("phone_number must be in E.164 format")
    agent_id = _object_id(data.get("agent_id"), "agent_id")
    if agent_id is None:
        raise CallRequestError("Agent not found", code=ErrorCode.NOT_FOUND)
    try:
        trunk_id, trunk_error = _object_id(data.get("sip_trunk_id"), "sip_trunk_id"), None
    except CallRequestError as exc:  # reported after "Agent not found", as SPEC orders them
        trunk_id, trunk_error = None, exc
    loaded = _load_agent(tenant, agent_id, trunk_id, phone_number)
    if loaded is None:
        raise CallRequestError("Agent not found", code=ErrorCode.NOT_FOUND)
    agent, trunk_status, number_listed = loaded
    if trunk_error is not None:
        raise trunk_error
    if trunk_status is None:
        raise CallRequestError("SIP trunk not found", code=ErrorCode.NOT_FOUND)
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise CallRequestError("metadata must be a JSON object")
    missing = [key for key in agent.required_fields if key not in metadata]
    if missing:
        raise CallRequestError(f"metadata missing required keys: {', '.join(map(str, missing))}")
    if agent.status != ActiveStatus.ACTIVE:
        raise CallRequestError("Agent is not active")
    if trunk_status != ActiveStatus.ACTIVE:
        raise CallRequestError("SIP trunk is not active")
    callback_url = _callback_url(data.get("callback_url"))
    if number_listed:
        raise CallRequestError(dnc.LISTED_MESSAGE)
    trunk = SipTrunk.from_db(connection.alias, ["id", "tenant_id", "status"], [trunk_id, tenant.pk, trunk_status])
    return CallRequest(phone_number, agent, trunk, metadata, callback_url)


@dataclass(frozen=True)
class PlainCallRequest:
    """A POST /calls body that passed every check needing no database: what the admitting statement
    checks the rest of (`ADMISSIBLE_SQL`) while it admits the call."""

    phone_number: str
    agent_id: uuid.UUID
    sip_trunk_id: uuid.UUID
    metadata: dict[str, Any]
    callback_url: str


def plain_call_request(data: Any) -> PlainCallRequest | None:
    """The body's values if every check of `validate_call_request` that needs no database passes; None
    otherwise — `validate_call_request` then answers, its errors in SPEC order."""
    if not isinstance(data, dict) or not set(data) <= set(CALL_FIELDS):
        return None
    phone_number = normalise_e164(data.get("phone_number"))
    metadata = {} if data.get("metadata") is None else data["metadata"]
    try:
        agent_id = _object_id(data.get("agent_id"), "agent_id")
        trunk_id = _object_id(data.get("sip_trunk_id"), "sip_trunk_id")
        callback_url = _callback_url(data.get("callback_url"))
    except CallRequestError:
        return None
    if phone_number is None or agent_id is None or trunk_id is None or not isinstance(metadata, dict):
        return None
    return PlainCallRequest(phone_number, agent_id, trunk_id, metadata, callback_url)


# The database's part of validate_call_request, as a condition of the statement that admits calls
# (calls.admission) on each row of `request`, the calls to admit (their agent_id, metadata and
# phone_number columns): the tenant's agent is active and given every metadata key its input schema
# names (each a string), and the number is not on the tenant's do-not-call list. The trunk's own checks
# (the tenant's, active) are the statement's. When it does not hold, validate_call_request says why.
ADMISSIBLE_SQL = """
    EXISTS (
        SELECT 1 FROM calls_agent agent
        WHERE agent.id = request.agent_id AND agent.tenant_id = %(tenant)s AND agent.status = %(active)s
        AND (
            SELECT bool_and(jsonb_typeof(required.key) = 'string' AND request.metadata ? (required.key #>> '{}'))
            FROM jsonb_array_elements(CASE jsonb_typeof(agent.input_schema -> 'fields')
                WHEN 'array' THEN agent.input_schema -> 'fields' ELSE '[]'::jsonb END) AS required(key)
        ) IS NOT FALSE
    )
    AND NOT EXISTS (
        SELECT 1 FROM calls_donotcallentry dnc
        WHERE dnc.tenant_id = %(tenant)s AND dnc.phone_number = request.phone_number
    )
"""


def _object_id(value: Any, field: str) -> uuid.UUID | None:
    """The id a request names (None when it cannot name any object); CallRequestError when it is missing."""
    if value in (None, ""):
        raise CallRequestError(f"{field} is required")
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# The one read of a call request (the hot path of POST /calls): the ORM's compiled form of this query
# (two subqueries) cost several times the CPU of the rest of the validation. Every table is scoped to
# the request's tenant by hand here, as tenants.scoping.for_tenant would. Prepared once per connection.
_AGENT_FIELDS = ("id", "tenant_id", "status", "input_schema")
_LOAD_SQL = (
    "SELECT {columns},"
    " (SELECT trunk.status FROM {trunk} trunk WHERE trunk.id = %(trunk)s AND trunk.tenant_id = %(tenant)s),"
    " EXISTS (SELECT 1 FROM {dnc} dnc WHERE dnc.tenant_id = %(tenant)s AND dnc.phone_number = %(number)s)"
    " FROM {agent} agent WHERE agent.id = %(agent)s AND agent.tenant_id = %(tenant)s"
)


@functools.cache
def _load_sql() -> str:
    return _LOAD_SQL.format(
        # in the model's field order, the order Agent.from_db takes the values in
        columns=", ".join(f"agent.{f.column}" for f in Agent._meta.concrete_fields if f.attname in _AGENT_FIELDS),
        agent=Agent._meta.db_table,
        trunk=SipTrunk._meta.db_table,
        dnc=DoNotCallEntry._meta.db_table,
    )


def _load_agent(
    tenant: Tenant, agent_id: uuid.UUID, trunk_id: uuid.UUID | None, phone_number: str
) -> tuple[Agent, str | None, bool] | None:
    """The tenant's agent (its id, tenant, status and input schema; other fields load on access), the
    trunk's status (None: no such trunk of the tenant) and whether the number is on the do-not-call
    list; None without the agent."""
    key = Agent._meta.pk.get_db_prep_value  # a UUID as the database stores it (SQLite: hex text)
    params = {
        "trunk": None if trunk_id is None else key(trunk_id, connection),
        "tenant": key(tenant.pk, connection),
        "number": phone_number,
        "agent": key(agent_id, connection),
    }
    with db.prepared_cursor(connection) as cursor:
        cursor.execute(_load_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None
    pk, tenant_id, status, schema, trunk_status, number_listed = row
    uuid_of = Agent._meta.pk.to_python  # SQLite returns a UUID as hex text
    schema = json.loads(schema) if isinstance(schema, str) else schema  # JSON comes back as text, as Django reads it
    values = [uuid_of(pk), uuid_of(tenant_id), status, schema]
    return Agent.from_db(connection.alias, _AGENT_FIELDS, values), trunk_status, bool(number_listed)


# --- agent runtime settings (SPEC §14) -------------------------------------------------------------

EXTRACT_TYPES = ("string", "number", "integer", "boolean", "date", "enum")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_DISPOSITIONS = 50
MAX_EXTRACT = 50
MAX_ENUM_VALUES = 100
MAX_TEXT = 500
MAX_VERIFICATION_KEYS = 10
MAX_TURNS = 500
MAX_DURATION_SECONDS = 4 * 3600


def clean_analysis(value: Any) -> dict[str, Any]:
    """`{"dispositions": [unique names], "extract": [{"name", "type", "description", "values"?}]}`."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValidationError("analysis must be an object with dispositions and extract")
    unknown = sorted(set(value) - {"dispositions", "extract"})
    if unknown:
        raise ValidationError(f"unknown key(s) in analysis: {', '.join(unknown)}")
    clean: dict[str, Any] = {}
    if value.get("dispositions") is not None:
        clean["dispositions"] = _names(value["dispositions"], "analysis.dispositions", MAX_DISPOSITIONS, pattern=False)
    if value.get("extract") is not None:
        clean["extract"] = _extract(value["extract"])
    return clean


def _names(items: Any, where: str, limit: int, *, pattern: bool) -> list[str]:
    if not isinstance(items, list) or not all(isinstance(item, str) and item.strip() for item in items):
        raise ValidationError(f"{where} must be a list of non-empty strings")
    names = [item.strip() for item in items]
    if len(names) > limit or any(len(name) > 100 for name in names):
        raise ValidationError(f"{where} holds at most {limit} names of at most 100 characters")
    if pattern and not all(NAME.match(name) for name in names):
        raise ValidationError(f"{where}: names are letters, digits and underscores, not starting with a digit")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationError(f"{where} repeats {', '.join(repeated)}")
    return names


def _extract(items: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise ValidationError("analysis.extract must be a list of fields")
    if len(items) > MAX_EXTRACT:
        raise ValidationError(f"analysis.extract holds at most {MAX_EXTRACT} fields")
    fields = [_extract_field(n, item) for n, item in enumerate(items, start=1)]
    names = [f["name"] for f in fields]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationError(f"analysis.extract: duplicate field name(s): {', '.join(repeated)}")
    return fields


def _extract_field(number: int, item: Any) -> dict[str, Any]:
    where = f"analysis.extract[{number}]"
    if not isinstance(item, dict):
        raise ValidationError(f"{where} must be an object with name, type and description")
    unknown = sorted(set(item) - {"name", "type", "description", "values"})
    if unknown:
        raise ValidationError(f"{where}: unknown key(s): {', '.join(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ValidationError(f"{where}: name must be letters, digits and underscores, not starting with a digit")
    kind = item.get("type", "string")
    if kind not in EXTRACT_TYPES:
        raise ValidationError(f"{where} ({name}): unknown type {kind!r}; choose one of {', '.join(EXTRACT_TYPES)}")
    description = item.get("description") or ""
    if not isinstance(description, str) or len(description) > MAX_TEXT:
        raise ValidationError(f"{where} ({name}): description must be text of at most {MAX_TEXT} characters")
    field = {"name": name, "type": kind, "description": description}
    if kind == "enum":
        values = item.get("values")
        if not values:
            raise ValidationError(f"{where} ({name}): an enum needs a non-empty list of values")
        field["values"] = _names(values, f"{where} ({name}) values", MAX_ENUM_VALUES, pattern=False)
    elif item.get("values") is not None:
        raise ValidationError(f"{where} ({name}): values are only for the enum type")
    return field


def clean_verification(value: Any, *, input_fields: list[str] | None = None) -> list[str]:
    """The metadata keys a caller must state; each must be a metadata key of the agent's input_schema."""
    if value in (None, ""):
        return []
    keys = _names(value, "verification", MAX_VERIFICATION_KEYS, pattern=True)
    if input_fields is not None:
        missing = [key for key in keys if key not in input_fields]
        if missing:
            raise ValidationError(
                f"verification keys must be among input_schema.fields (the metadata every call carries): "
                f"{', '.join(missing)}"
            )
    return keys


def clean_template(value: Any, field: str) -> str:
    """A template field (prompt, first_message, end_call_message): its syntax is checked at save time."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be text")
    try:
        templating.validate(value)
    except templating.TemplateError as exc:
        raise ValidationError(f"{field}: {exc}") from None
    return value


def clean_bound(value: Any, field: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(f"{field} must be a whole number between 1 and {maximum}")
    return value
