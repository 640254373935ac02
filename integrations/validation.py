"""Save-time checks of connections and endpoints, shared by the REST serializers and the admin forms.

Each function returns `{field: [message]}` (empty when valid), so callers can raise their own error
type (a 400 naming the field, or a form error on the field).
"""

from __future__ import annotations

import json
from typing import Any

from integrations import http, mapping, parameters, rendering, templating
from integrations.auth import secret_refs
from integrations.auth.base import HEADER_NAME
from integrations.models import BodyType

MAX_TIMEOUT = 120.0
MAX_RESPONSE_BYTES = 100 * 1024 * 1024
MAX_SAY_DELAY = 120
VOICE_MESSAGES = ("say_on_start", "say_on_delay", "say_on_failure")
RETRY_KEYS = {"max_retries", "base_delay", "max_delay", "retry_statuses", "retry_on_connection_errors"}


def template_problem(template: Any) -> str:
    """Why `template` is not a valid template, or ''."""
    if not isinstance(template, str):
        return "must be a string"
    try:
        templating.validate(template)
    except templating.TemplateError as exc:
        return str(exc)
    return ""


def _add(errors: dict, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def template_map_errors(values: Any, field: str, errors: dict, *, header_names: bool) -> None:
    if values in (None, ""):
        return
    if not isinstance(values, dict):
        _add(errors, field, "Expected an object of name → template.")
        return
    for name, template in values.items():
        if header_names and not HEADER_NAME.match(name):
            _add(errors, field, f"{name!r} is not a valid header name.")
        elif not name:
            _add(errors, field, "Names must not be empty.")
        # A header may hold a secret reference (`env:NAME`); it must be one tenants may use.
        problem = template_problem(template) or (secret_refs.reference_problem(template) if header_names else "")
        if problem:
            _add(errors, field, f"{name}: {problem}")


def connection_errors(data: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    base_url = data.get("base_url") or ""
    if base_url:
        # Literal addresses and the URL's shape only: a name is resolved (and checked) on every send.
        try:
            http.check_url(base_url, resolve=False)
        except http.OutboundError as exc:
            _add(errors, "base_url", f"{str(exc)[0].upper()}{str(exc)[1:]}.")
    template_map_errors(data.get("default_headers"), "default_headers", errors, header_names=True)
    for field in ("connect_timeout", "read_timeout", "total_deadline"):
        value = data.get(field)
        if value is not None and not 0 < value <= (MAX_TIMEOUT if field != "total_deadline" else 600):
            _add(errors, field, "Must be more than 0 and at most the allowed maximum.")
    if "retry" in data:
        for message in retry_problems(data["retry"]):
            _add(errors, "retry", message)
    size = data.get("max_response_bytes")
    if size is not None and not 1 <= size <= MAX_RESPONSE_BYTES:
        _add(errors, "max_response_bytes", f"Must be from 1 to {MAX_RESPONSE_BYTES} bytes.")
    return errors


def retry_problems(retry: Any) -> list[str]:
    if retry in (None, ""):
        return []
    if not isinstance(retry, dict):
        return ["Expected an object."]
    problems = [f"{key}: unknown key" for key in retry if key not in RETRY_KEYS]
    if "max_retries" in retry and (type(retry["max_retries"]) is not int or not 0 <= retry["max_retries"] <= 10):
        problems.append("max_retries: must be an integer from 0 to 10")
    for key in ("base_delay", "max_delay"):
        value = retry.get(key)
        if key in retry and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 300):
            problems.append(f"{key}: must be a number of seconds from 0 to 300")
    statuses = retry.get("retry_statuses")
    if "retry_statuses" in retry and (
        not isinstance(statuses, list) or not all(type(s) is int and 100 <= s <= 599 for s in statuses)
    ):
        problems.append("retry_statuses: must be a list of HTTP status codes")
    if "retry_on_connection_errors" in retry and not isinstance(retry["retry_on_connection_errors"], bool):
        problems.append("retry_on_connection_errors: must be true or false")
    return problems


def endpoint_errors(data: dict) -> dict[str, list[str]]:
    """Templates, parameters, mapping and body of an endpoint (`data` holds the fields being saved)."""
    errors: dict[str, list[str]] = {}
    for field in ("path", "response_template", *VOICE_MESSAGES):
        problem = template_problem(data.get(field) or "")
        if problem:
            _add(errors, field, problem)
    delay = data.get("say_on_delay_seconds")
    if delay is not None and not 1 <= delay <= MAX_SAY_DELAY:
        _add(errors, "say_on_delay_seconds", f"Must be from 1 to {MAX_SAY_DELAY} seconds.")
    template_map_errors(data.get("query"), "query", errors, header_names=False)
    template_map_errors(data.get("headers"), "headers", errors, header_names=True)
    body_errors(data.get("body_type") or BodyType.NONE, data.get("body_template") or "", errors)
    declared, problems = parameters.clean_declarations(data.get("parameters"))
    for message in problems:
        _add(errors, "parameters", message)
    if not problems:
        data["parameters"] = declared
        for param in declared:
            if param["location"] == "path" and not rendering.mentions([data.get("path") or ""], param["name"]):
                _add(errors, "parameters", f"path parameter {param['name']!r} is not used in the path")
    for message in mapping.clean_mapping(data.get("response_mapping")):
        _add(errors, "response_mapping", message)
    for field in ("connect_timeout", "read_timeout"):
        value = data.get(field)
        if value is not None and not 0 < value <= MAX_TIMEOUT:
            _add(errors, field, f"Must be more than 0 and at most {MAX_TIMEOUT:g} seconds.")
    return errors


def body_errors(body_type: str, template: str, errors: dict) -> None:
    if body_type in (BodyType.FORM, BodyType.MULTIPART):
        try:
            spec = json.loads(template) if template.strip() else {}
        except ValueError:
            _add(errors, "body_template", f"A {body_type} body is a JSON object of field → template.")
            return
        for message in _structured_body_problems(body_type, spec):
            _add(errors, "body_template", message)
        return
    if body_type == BodyType.JSON:
        try:
            templating.validate_json(template)
        except templating.TemplateError as exc:
            _add(errors, "body_template", str(exc))
        return
    problem = template_problem(template)
    if problem:
        _add(errors, "body_template", problem)


def _structured_body_problems(body_type: str, spec: Any) -> list[str]:
    if not isinstance(spec, dict):
        return [f"A {body_type} body is a JSON object of field → template."]
    if body_type == BodyType.FORM:
        return [f"{name}: {p}" for name, value in spec.items() if (p := template_problem(value))]
    unknown = set(spec) - {"fields", "files"}
    if unknown:
        return ['A multipart body is {"fields": {name: template}, "files": {name: {...}}}.']
    problems = [f"fields.{n}: {p}" for n, v in (spec.get("fields") or {}).items() if (p := template_problem(v))]
    for name, file in (spec.get("files") or {}).items():
        if not isinstance(file, dict) or not isinstance(file.get("content", ""), str):
            problems.append(f"files.{name}: expected {{filename, content_type, content, encoding}}")
        elif file.get("encoding", "text") not in ("text", "base64"):
            problems.append(f"files.{name}.encoding: must be text or base64")
        elif p := template_problem(file.get("content", "")):
            problems.append(f"files.{name}.content: {p}")
    return problems
