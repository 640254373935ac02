"""`challenge_response`: multi-step authentication with dynamic tokens, declared, not coded.

Config:
- `steps`: a list of HTTP requests run in order, each
  `{"name", "method", "url", "headers": {name: template}, "body_type": "none|json|form|text",
  "body": template (json/text) or {field: template} (form), "extract": {"variable": "JMESPath"}}`;
  what `extract` finds in a step's answer (JSON body; `status_code`, `headers.<name>` too) joins the
  context of the following steps and of the final templates;
- `header` / `query`: the final templates (name → template) put on every authenticated request;
- `variables`: non-secret values for the templates; `token_lifetime`: seconds the extracted values
  are reused (shared cache, one run at a time across processes), default 300;
- `expired_token_condition`: JMESPath over an API answer that means "run the steps again".
Secrets: `values` — secret name → value (literal, `env:` or `file:` reference), reachable by name in
every template, e.g. `{{hmac_sha256 api_secret nonce}}`.

A step that fails, answers non-2xx or lacks an extracted value makes the call a `failure`
("credential could not be obtained: step 1 (nonce) answered HTTP 500").
"""

from __future__ import annotations

import json
import re
from typing import Any

from integrations import http, mapping, templating
from integrations.auth import token_cache
from integrations.auth.base import HEADER_NAME, AuthTarget, AuthTestResult, CredentialUnavailable, Field
from integrations.auth.tokens import EXPIRED_TOKEN_CONDITION, TokenAuth
from tenants.secrets import MASK

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_TYPES = ("none", "json", "form", "text")
STEP_KEYS = {"name", "method", "url", "headers", "body_type", "body", "extract"}
MAX_STEPS = 10
MAX_LIFETIME = 86_400
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STEP_CONNECT_TIMEOUT = 3.0
STEP_READ_TIMEOUT = 10.0
STEP_MAX_BYTES = 256 * 1024


class ChallengeResponseAuth(TokenAuth):
    label = "Challenge-response"
    cache_prefix = "challenge"
    config_fields = (
        Field("steps", required=True, kind="json"),
        Field("header", kind="map", help="Final header name → template"),
        Field("query", kind="map", help="Final query parameter name → template"),
        Field("variables", kind="map", help="Non-secret values for the templates"),
        Field("token_lifetime", default=300, kind="json", help="Seconds the obtained values are reused"),
        EXPIRED_TOKEN_CONDITION,
    )
    secret_fields = (Field("values", required=True, kind="map"),)

    # --- save time -------------------------------------------------------------------------------------
    @classmethod
    def check(cls, config: dict, secrets: dict, errors: dict) -> None:
        super().check(config, secrets, errors)
        problems = errors.setdefault("config", {})
        step_problems = steps_problems(config.get("steps"))
        if step_problems:
            problems["steps"] = step_problems
        for name in ("header", "query"):
            found = _map_problems(config.get(name) or {}, header=name == "header")
            if found:
                problems[name] = found
        if not config.get("header") and not config.get("query"):
            problems.setdefault("header", []).append("Give a header or query template to send the result.")
        lifetime = config.get("token_lifetime")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 1 <= lifetime <= MAX_LIFETIME:
            problems["token_lifetime"] = [f"Must be a whole number of seconds from 1 to {MAX_LIFETIME}."]
        if not problems:
            errors.pop("config")

    # --- runtime ---------------------------------------------------------------------------------------
    def context(self, extracted: dict | None = None) -> dict:
        return {**(self.config.get("variables") or {}), **(self.secret("values") or {}), **(extracted or {})}

    def fetch_token(self) -> token_cache.Token:
        extracted: dict[str, Any] = {}
        for number, step in enumerate(self.config["steps"], start=1):
            extracted.update(self._run_step(number, step, self.context(extracted)))
        return token_cache.Token.issued(extracted, self.config.get("token_lifetime") or 300)

    def _run_step(self, number: int, step: dict, context: dict) -> dict:
        label = _label(number, step)
        try:
            headers = templating.render_headers(step.get("headers") or {}, context).value
            url = templating.render(step["url"], context).value
            body = _body(step, context, headers)
        except templating.TemplateError as exc:
            raise CredentialUnavailable(f"{label}: invalid template: {exc}") from None
        try:
            response = http.send(
                step.get("method", "POST"),
                url,
                headers=headers,
                connect_timeout=STEP_CONNECT_TIMEOUT,
                read_timeout=STEP_READ_TIMEOUT,
                deadline=STEP_READ_TIMEOUT + STEP_CONNECT_TIMEOUT,
                max_bytes=STEP_MAX_BYTES,
                **body,
            )
        except http.OutboundError as exc:
            raise token_cache.FetchFailed(f"{label}: {exc}") from None
        if not response.ok:
            raise token_cache.FetchFailed(f"{label} answered HTTP {response.status_code}")
        return _extract(label, step, response)

    def place(self, token: token_cache.Token, request: AuthTarget) -> None:
        context = self.context(token.values)
        try:
            headers = templating.render_headers(self.config.get("header") or {}, context).value
            query = templating.render_query(self.config.get("query") or {}, context).value
        except templating.TemplateError as exc:
            raise CredentialUnavailable(f"final template: {exc}") from None
        request.headers.update(headers)
        request.query.update(query)
        self._seen.extend(v for v in [*headers.values(), *query.values()] if v)

    def apply_dry_run(self, request: AuthTarget) -> None:
        # The steps are not run for a dry run; the final header/query names show masked values.
        request.headers.update(dict.fromkeys(self.config.get("header") or {}, MASK))
        request.query.update(dict.fromkeys(self.config.get("query") or {}, MASK))

    def token_secrets(self, token: token_cache.Token) -> list[str]:
        return [str(v) for v in token.values.values() if isinstance(v, (str, int, float)) and len(str(v)) >= 4]

    def redacted_headers(self) -> set[str]:
        return {name.lower() for name in (self.config.get("header") or {})}

    def redacted_query(self) -> set[str]:
        return set(self.config.get("query") or {})

    def test(self) -> AuthTestResult:
        token = self.token(force=True)
        result = self.describe(token, f"{len(self.config['steps'])} step(s) ran")
        details = {"steps": len(self.config["steps"]), "obtained": sorted(token.values), **result.details}
        details.pop("token", None)
        details.pop("token_type", None)
        return AuthTestResult(ok=True, message=result.message, details=details)


def _label(number: int, step: Any) -> str:
    name = step.get("name") if isinstance(step, dict) else None
    return f"step {number} ({name})" if name else f"step {number}"


def _body(step: dict, context: dict, headers: dict) -> dict:
    kind = step.get("body_type", "none")
    template = step.get("body")
    if kind == "json":
        return {"json": templating.render_json(template or "", context).value}
    if kind == "form":
        return {"data": templating.render_query(template or {}, context).value}
    if kind == "text":
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return {"data": templating.render(template or "", context).value.encode()}
    return {}


def _extract(label: str, step: dict, response: http.HttpResponse) -> dict:
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = response.text
    headers = {name.lower(): value for name, value in response.headers.items()}
    found, unresolved = mapping.apply_mapping(step.get("extract") or {}, body, response.status_code, headers)
    if unresolved:
        raise CredentialUnavailable(f"{label}: {', '.join(unresolved)} not found in the answer")
    return found


def steps_problems(steps: Any) -> list[str]:
    """Every problem of a steps list, each naming its step and field (`step 2 (sign): url: ...`)."""
    if not isinstance(steps, list) or not steps:
        return ["Must be a non-empty list of steps."]
    if len(steps) > MAX_STEPS:
        return [f"At most {MAX_STEPS} steps."]
    problems: list[str] = []
    for number, step in enumerate(steps, start=1):
        label = _label(number, step)
        if not isinstance(step, dict):
            problems.append(f"{label}: must be an object")
            continue
        problems.extend(f"{label}: {problem}" for problem in _step_problems(step))
    return problems


def _step_problems(step: dict) -> list[str]:
    problems = [f"{key}: unknown field" for key in step if key not in STEP_KEYS]
    if step.get("method", "POST") not in METHODS:
        problems.append(f"method: must be one of {', '.join(METHODS)}")
    if not isinstance(step.get("url"), str) or not step["url"].strip():
        problems.append("url: required")
    else:
        problems.extend(f"url: {p}" for p in _template_problems(step["url"]))
    problems.extend(f"headers: {p}" for p in _map_problems(step.get("headers") or {}, header=True))
    problems.extend(_body_problems(step))
    extract = step.get("extract") or {}
    if not isinstance(extract, dict):
        problems.append("extract: must be an object of variable → JMESPath")
    else:
        for variable in extract:
            if not VARIABLE.match(str(variable)):
                problems.append(f"extract: {variable!r} is not a valid variable name")
        problems.extend(f"extract: {p}" for p in mapping.clean_mapping(extract))
    return problems


def _body_problems(step: dict) -> list[str]:
    kind = step.get("body_type", "none")
    if kind not in BODY_TYPES:
        return [f"body_type: must be one of {', '.join(BODY_TYPES)}"]
    body = step.get("body")
    if kind == "form":
        return [f"body: {p}" for p in _map_problems(body or {}, header=False)]
    if kind in ("json", "text") and body is not None and not isinstance(body, str):
        return ["body: must be a template string"]
    if kind == "json" and body:
        try:
            templating.validate_json(body)
        except templating.TemplateError as exc:
            return [f"body: {exc}"]
    if kind == "text" and body:
        return [f"body: {p}" for p in _template_problems(body)]
    return []


def _map_problems(templates: Any, *, header: bool) -> list[str]:
    if not isinstance(templates, dict):
        return ["must be an object of name → template"]
    problems = []
    for name, template in templates.items():
        if header and not HEADER_NAME.match(str(name)):
            problems.append(f"{name!r} is not a valid header name")
        if not isinstance(template, str):
            problems.append(f"{name}: must be a template string")
            continue
        problems.extend(f"{name}: {p}" for p in _template_problems(template))
    return problems


def _template_problems(template: str) -> list[str]:
    try:
        templating.validate(template)
    except templating.TemplateError as exc:
        return [str(exc)]
    return []
