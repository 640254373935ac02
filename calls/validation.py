"""Validation of calls' inputs, shared by the API, the admin and the services.

- `validate_call_request(tenant, data)` checks a POST /integration/v1/calls body in SPEC §9's order
  and raises `CallRequestError` with the exact public message;
- `normalise_e164(value)` is the one definition of a phone number the product accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from calls import dnc
from calls.models import ActiveStatus, Agent, SipTrunk
from integrations import http
from tenants import scoping
from tenants.errors import DomainError, ErrorCode, NotFound
from tenants.models import Tenant

CALL_FIELDS = ("phone_number", "agent_id", "sip_trunk_id", "metadata", "callback_url")
_E164_CHARS = re.compile(r"^\+[0-9 ().\-]+$")


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


@dataclass
class CallRequest:
    phone_number: str
    agent: Agent
    sip_trunk: SipTrunk
    metadata: dict
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
    callback_url = _callback_url(data.get("callback_url"))
    if dnc.is_listed(tenant, phone_number):
        raise CallRequestError(dnc.LISTED_MESSAGE)
    return CallRequest(phone_number, agent, trunk, metadata, callback_url)


def _lookup(tenant: Tenant, model, value: Any, field: str, not_found: str):
    if value in (None, ""):
        raise CallRequestError(f"{field} is required")
    if not isinstance(value, str):
        raise CallRequestError(not_found, code=ErrorCode.NOT_FOUND)
    try:
        return scoping.get_for_tenant(model, tenant, pk=value)
    except NotFound:
        raise CallRequestError(not_found, code=ErrorCode.NOT_FOUND) from None
