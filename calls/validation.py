"""Validation of calls' inputs, shared by the REST serializers, the admin forms and the services.

- `validate_call_request(tenant, data)` checks a POST /integration/v1/calls body in SPEC §9's order
  and raises `CallRequestError` with the exact public message;
- `normalise_e164(value)` is the one definition of a phone number the product accepts;
- `clean_trunk_phone`, `clean_dialer_config`, `clean_input_schema` and `TRUNK_LIMITS` are the save-time
  checks of trunks and agents: each raises Django's `ValidationError`, which DRF serializers and
  Django forms both report on the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import phonenumbers
from django.core.exceptions import ValidationError

from calls.dialers import DialerConfigError, UnknownDialer, get_dialer
from calls.models import ActiveStatus, Agent, SipTrunk
from integrations import http
from tenants import scoping
from tenants.errors import DomainError, ErrorCode, NotFound
from tenants.models import Tenant

M = TypeVar("M", Agent, SipTrunk)
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


def clean_dialer_config(dialer: str, config: Any) -> dict[str, Any]:
    """`config` as back end `dialer` normalises it; a ValidationError on `dialer_config` otherwise
    (raised from a serializer's or a form's whole-object check, so it names its field)."""
    try:
        return get_dialer(dialer).validate_config(config)
    except (DialerConfigError, UnknownDialer) as exc:
        raise ValidationError({"dialer_config": [str(exc)]}) from None


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
    sip_trunk: SipTrunk
    metadata: dict[str, Any]
    callback_url: str


def validate_call_request(tenant: Tenant, data: Any) -> CallRequest:
    """Check a POST /calls body in the order of SPEC §9; raise CallRequestError with the exact message."""
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
    agent = _lookup(tenant, Agent, data.get("agent_id"), "agent_id", "Agent not found")
    trunk = _lookup(tenant, SipTrunk, data.get("sip_trunk_id"), "sip_trunk_id", "SIP trunk not found")
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise CallRequestError("metadata must be a JSON object")
    missing = [key for key in agent.required_fields if key not in metadata]
    if missing:
        raise CallRequestError(f"metadata missing required keys: {', '.join(missing)}")
    if agent.status != ActiveStatus.ACTIVE:
        raise CallRequestError("Agent is not active")
    if trunk.status != ActiveStatus.ACTIVE:
        raise CallRequestError("SIP trunk is not active")
    return CallRequest(phone_number, agent, trunk, metadata, _callback_url(data.get("callback_url")))


def _lookup(tenant: Tenant, model: type[M], value: Any, field: str, not_found: str) -> M:
    if value in (None, ""):
        raise CallRequestError(f"{field} is required")
    if not isinstance(value, str):
        raise CallRequestError(not_found, code=ErrorCode.NOT_FOUND)
    try:
        return scoping.get_for_tenant(model, tenant, pk=value)
    except NotFound:
        raise CallRequestError(not_found, code=ErrorCode.NOT_FOUND) from None
