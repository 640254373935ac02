"""The one validation module of campaigns: used by the REST serializer and the admin form alike.

Each `clean_<field>(value, ...)` returns the normalised value or raises CampaignError naming the
field. Steps are checked whole (endpoints of the tenant, templates that compile, JMESPath maps).
"""

from __future__ import annotations

import re
import uuid
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from calls.models import TERMINAL_STATUSES, CallStatus
from campaigns.errors import CampaignError
from integrations import http, templating
from integrations.mapping import clean_mapping
from integrations.models import Endpoint
from tenants import scoping

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ON_ERROR = ("continue", "retry", "fail", "branch")
STEP_KEYS = {"type", "endpoint", "params", "map", "on_error", "branch", "only_if"}
RETRYABLE_STATUSES = tuple(s for s in TERMINAL_STATUSES if s != CallStatus.REJECTED_CAPACITY)
MAX_STEPS = 20
MAX_BRANCH_DEPTH = 3
MAX_ATTEMPTS = 20
MAX_DELAY_MINUTES = 7 * 24 * 60
MAX_CONCURRENT_CALLS = 1000
_HH_MM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def _fail(field: str, message: str) -> CampaignError:
    return CampaignError(message, field=field)


def _number(field: str, value: Any, low: float, high: float, *, integer: bool = False) -> float | int:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "a whole number" if integer else "a number"
        raise _fail(field, f"{field} must be {kind} between {low:g} and {high:g}")
    return value


def clean_calling_window(value: Any) -> dict:
    """`{"days": [...], "start": "09:00", "end": "20:00"}`; an end before the start spans midnight."""
    if value in (None, {}):
        value = {}
    if not isinstance(value, dict) or set(value) - {"days", "start", "end"}:
        raise _fail("calling_window", 'calling_window must be {"days": [...], "start": "HH:MM", "end": "HH:MM"}')
    days = value.get("days", list(DAYS))
    if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
        raise _fail("calling_window", f"calling_window.days must be a non-empty list of: {', '.join(DAYS)}")
    window: dict[str, Any] = {"days": [d for d in DAYS if d in days]}
    for key, default in (("start", "09:00"), ("end", "20:00")):
        text = value.get(key, default)
        if not isinstance(text, str) or not _HH_MM.match(text):
            raise _fail("calling_window", f"calling_window.{key} must be a time of day as HH:MM (24 h)")
        window[key] = text
    if window["start"] == window["end"]:
        raise _fail("calling_window", "calling_window.start and end must differ")
    return window


def window_times(window: dict) -> tuple[time, time]:
    start, end = (time.fromisoformat(window[k]) for k in ("start", "end"))
    return start, end


def clean_retry(value: Any) -> dict:
    if value in (None, {}):
        value = {}
    if not isinstance(value, dict) or set(value) - {"max_attempts", "delay_minutes", "on"}:
        raise _fail("retry", 'retry must be {"max_attempts": 3, "delay_minutes": 60, "on": [call statuses]}')
    on = value.get("on", ["Decline", "SIP Call Failed", "Trigger Failed"])
    if not isinstance(on, list) or any(s not in RETRYABLE_STATUSES for s in on):
        raise _fail("retry", f"retry.on must be a list of call statuses: {', '.join(RETRYABLE_STATUSES)}")
    return {
        "max_attempts": _number("retry.max_attempts", value.get("max_attempts", 3), 1, MAX_ATTEMPTS, integer=True),
        # Fractions are allowed (0.5 = 30 s): useful for short test campaigns.
        "delay_minutes": _number("retry.delay_minutes", value.get("delay_minutes", 60), 0, MAX_DELAY_MINUTES),
        "on": list(dict.fromkeys(on)),
    }


def clean_columns(value: Any) -> dict:
    """`{"phone_number": "<column>", "timezone": "<column>", "metadata": {"<column>": "<key>"}}`."""
    if value in (None, {}):
        value = {}
    if not isinstance(value, dict) or set(value) - {"phone_number", "timezone", "metadata"}:
        raise _fail("columns", 'columns must be {"phone_number": "<column>", "metadata": {"<column>": "<key>"}}')
    clean: dict[str, Any] = {}
    for key in ("phone_number", "timezone"):
        column = value.get(key, key)
        if not isinstance(column, str) or not column.strip() or len(column) > 200:
            raise _fail("columns", f"columns.{key} must be a column name")
        clean[key] = column.strip()
    metadata = value.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in metadata.items()
        ):
            raise _fail("columns", "columns.metadata must map column names to metadata keys")
        clean["metadata"] = metadata
    return clean


def clean_default_region(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise _fail("default_region", "default_region must be a two-letter country code such as IN or US")
    return value.upper()


def zone_or_none(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder name such as America
        return None


def clean_timezone(value: Any) -> str:
    if value in (None, ""):
        return ""
    if zone_or_none(value) is None:
        raise _fail("timezone", "timezone must be an IANA time zone such as Asia/Kolkata")
    return value.strip()


def clean_max_concurrent_calls(value: Any) -> int:
    return int(_number("max_concurrent_calls", value, 1, MAX_CONCURRENT_CALLS, integer=True))


def clean_callback_url(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or len(value) > 2000:
        raise _fail("callback_url", "callback_url must be a valid http or https URL")
    try:
        http.check_url(value.strip())
    except http.DestinationNotAllowed as exc:
        raise _fail("callback_url", f"callback_url is not allowed: {exc}") from None
    except http.OutboundError:
        raise _fail("callback_url", "callback_url must be a valid http or https URL") from None
    return value.strip()


def clean_opt_out_dispositions(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() and len(v) <= 100 for v in value):
        raise _fail("opt_out_dispositions", "opt_out_dispositions must be a list of disposition names")
    return list(dict.fromkeys(v.strip() for v in value))


def clean_schedule(start_at, end_at) -> None:
    if start_at and end_at and end_at <= start_at:
        raise _fail("end_at", "end_at must be after start_at")


# --- steps ----------------------------------------------------------------------------------------


def clean_steps(value: Any, tenant) -> dict:
    """`{"before_call": [steps], "after_call": [steps]}` with every endpoint one of the tenant's."""
    if value in (None, {}):
        value = {}
    if not isinstance(value, dict) or set(value) - {"before_call", "after_call"}:
        raise _fail("steps", 'steps must be {"before_call": [...], "after_call": [...]}')
    return {
        phase: _clean_step_list(value.get(phase) or [], tenant, f"steps.{phase}", after=phase == "after_call")
        for phase in ("before_call", "after_call")
    }


def _clean_step_list(steps: Any, tenant, where: str, *, after: bool, depth: int = 0) -> list[dict]:
    if not isinstance(steps, list):
        raise _fail("steps", f"{where} must be a list of steps")
    if len(steps) > MAX_STEPS:
        raise _fail("steps", f"{where} holds at most {MAX_STEPS} steps")
    return [_clean_step(step, tenant, f"{where}[{i}]", after=after, depth=depth) for i, step in enumerate(steps)]


def _clean_step(step: Any, tenant, where: str, *, after: bool, depth: int) -> dict:
    if not isinstance(step, dict):
        raise _fail("steps", f"{where} must be an object")
    unknown = sorted(set(step) - STEP_KEYS)
    if unknown:
        raise _fail("steps", f"{where}: unknown key(s) {', '.join(unknown)}")
    if step.get("type", "api_call") != "api_call":
        raise _fail("steps", f'{where}.type must be "api_call"')
    clean: dict[str, Any] = {"type": "api_call", "endpoint": _endpoint_id(step.get("endpoint"), tenant, where)}
    params = step.get("params") or {}
    if not isinstance(params, dict):
        raise _fail("steps", f"{where}.params must be an object of parameter → template")
    for name, template in params.items():
        if isinstance(template, str):
            try:
                templating.validate(template)
            except templating.TemplateError as exc:
                raise _fail("steps", f"{where}.params.{name}: {exc}") from None
    clean["params"] = params
    problems = clean_mapping(step.get("map"))
    if problems:
        raise _fail("steps", f"{where}.map: {problems[0]}")
    clean["map"] = step.get("map") or {}
    on_error = step.get("on_error", "fail")
    if on_error not in ON_ERROR:
        raise _fail("steps", f"{where}.on_error must be one of: {', '.join(ON_ERROR)}")
    clean["on_error"] = on_error
    branch = step.get("branch") or []
    if on_error == "branch" and not branch:
        raise _fail("steps", f'{where}: on_error "branch" needs a non-empty branch')
    if branch and depth >= MAX_BRANCH_DEPTH:
        raise _fail("steps", f"{where}: branches nest at most {MAX_BRANCH_DEPTH} deep")
    clean["branch"] = _clean_step_list(branch, tenant, f"{where}.branch", after=after, depth=depth + 1)
    if step.get("only_if") not in (None, {}):
        clean["only_if"] = _clean_only_if(step["only_if"], where, after=after)
    return clean


def _endpoint_id(value: Any, tenant, where: str) -> str:
    try:
        pk = uuid.UUID(str(value))
    except ValueError:
        raise _fail("steps", f"{where}.endpoint must be the id of one of your endpoints") from None
    if not scoping.for_tenant(Endpoint, tenant).filter(pk=pk).exists():
        raise _fail("steps", f"{where}.endpoint must be the id of one of your endpoints")
    return str(pk)


def _clean_only_if(value: Any, where: str, *, after: bool) -> dict:
    if not after:
        raise _fail("steps", f"{where}.only_if is for after_call steps (before the call there is no outcome)")
    if not isinstance(value, dict) or set(value) - {"call_status", "disposition"}:
        raise _fail("steps", f'{where}.only_if must be {{"call_status": [...], "disposition": [...]}}')
    clean = {}
    for key, allowed in (("call_status", TERMINAL_STATUSES), ("disposition", None)):
        if key not in value:
            continue
        items = value[key]
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise _fail("steps", f"{where}.only_if.{key} must be a list of names")
        if allowed and any(i not in allowed for i in items):
            raise _fail("steps", f"{where}.only_if.call_status must list call statuses: {', '.join(allowed)}")
        clean[key] = items
    return clean
