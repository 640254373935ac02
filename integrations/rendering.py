"""Turning an endpoint, its parameters and the template context into a request that can be sent.

Everything here is pure: nothing is sent, and no credential is applied (the executor authenticates the
rendered request: `integrations.executor.authenticate`). Each value is rendered for where it lands (see
`integrations.templating`): path segments percent-encoded, query values and form fields URL-encoded,
JSON bodies JSON-encoded (lone-expression leaves keep their type), headers refused on CR/LF.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from integrations import templating
from integrations.auth import secret_refs
from integrations.models import BodyType
from integrations.redaction import HARMLESS_HEADERS, SENSITIVE_NAME, Redactor

if TYPE_CHECKING:
    from integrations.auth.base import CredentialType
    from integrations.models import Endpoint

SAFE_TENANT_FIELDS = ("id", "name", "slug")
DEFAULT_CONTENT_TYPES: dict[str, str] = {
    BodyType.JSON: "application/json",
    BodyType.TEXT: "text/plain; charset=utf-8",
    BodyType.RAW: "application/octet-stream",
    BodyType.FORM: "application/x-www-form-urlencoded",
}


class PrepareError(Exception):
    """The request cannot be built (bad template, bad body, header injection): the call is a `failure`."""


@dataclass
class PreparedRequest:
    """A rendered request. `redacted()` is the only view of it that may be shown or stored."""

    method: str
    url: str
    headers: dict[str, str]
    data: bytes | dict | None = None
    files: dict | None = None
    display_body: Any = None
    missing: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    redactor: Redactor = field(default_factory=Redactor)
    authenticator: CredentialType | None = None
    base_url: str = ""
    base_query: dict = field(default_factory=dict)
    base_headers: dict = field(default_factory=dict)
    secret_header_names: set = field(default_factory=set)
    header_secrets: list = field(default_factory=list)

    def set_target(self, headers: dict[str, str], query: dict[str, str], redactor: Redactor) -> None:
        """Send with these headers and query (the rendered ones plus what a credential adds), shown
        through `redactor`. The executor calls it when it authenticates, again after a new token."""
        self.headers = headers
        self.url = self.base_url + ("?" + urlencode(query) if query else "")
        self.redactor = redactor

    def redacted(self) -> dict:
        """method, URL, headers and body with every secret removed."""
        return {
            "method": self.method,
            "url": self.redactor.url(self.url),
            "headers": self.redactor.headers(self.headers),
            "body": self.redactor.data(self.display_body),
        }


def tenant_context(tenant: Any) -> dict:
    return {name: str(getattr(tenant, name, "") or "") for name in SAFE_TENANT_FIELDS}


# Namespaces the platform fills in; a session variable or parameter of the same name is hidden by them
# (the test console warns about it: `shadowed_names`).
RESERVED_NAMES = ("params", "row", "conversation", "tenant", "extracted", "call")


def shadowed_names(variables: dict | None) -> list[str]:
    """The session variables that a reserved namespace hides (`row`, `call`, ...), in reserved order."""
    return [name for name in RESERVED_NAMES if name in (variables or {})]


def build_context(
    endpoint: Endpoint,
    params: dict,
    variables: dict | None,
    conversation: dict | None,
    row: dict | None,
    scope: dict | None = None,
) -> dict:
    """SPEC §4's context: session variables at the top, overridden by params; params/row/conversation/tenant.

    `conversation` is the caller's `conversation.*` as it stands (`Conversation.template_context()`),
    so an endpoint's templates and the caller's own see the same values. `scope` adds a caller's own
    names (a campaign step's `variables`, `extracted`, `call`, `ai_classification`); it may not replace
    `params`, `row`, `conversation` or `tenant`.
    """
    context = dict(variables or {})
    context.update(params)
    context.update(extracted={}, call={})
    context.update({k: v for k, v in (scope or {}).items() if k not in ("params", "row", "conversation", "tenant")})
    context["params"] = params
    context["row"] = row or {}
    context["conversation"] = dict(conversation or {})
    context["tenant"] = tenant_context(endpoint.tenant)
    return context


def _render(template: str, context: dict, missing: list[str], render: Any = None) -> str:
    """`template` rendered with `render` (plain text by default), its missing variables added to `missing`."""
    if "{" not in template and "\\" not in template:
        return template
    rendered = (render or templating.render)(template, context)
    missing.extend(rendered.missing)
    return rendered.value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def mentions(templates: Any, name: str) -> bool:
    """Whether any of `templates` refers to variable `name` (or `params.name`) in an expression."""
    pattern = re.compile(r"\{\{?[^}]*\b(?:params\.)?" + re.escape(name) + r"\b")
    return any(isinstance(t, str) and pattern.search(t) for t in templates)


def build_url(endpoint: Endpoint, context: dict, params: dict, missing: list[str]) -> tuple[str, dict[str, str]]:
    """(URL without the query, query parameters) from the base URL, the path and the query templates."""
    # Values in a templated base URL are percent-encoded like path segments: a variable (perhaps a
    # visitor's) must never add a host, a user-info `@`, a path or a query to the tenant's URL.
    base = _render(endpoint.connection.base_url, context, missing, templating.render_path)
    path = _render(endpoint.path or "", context, missing, templating.render_path)
    parts = urlsplit(base)
    if path:
        parts = parts._replace(path=parts.path.rstrip("/") + "/" + path.lstrip("/"))
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, template in (endpoint.query or {}).items():
        value = _render(template, context, missing)
        if value != "":
            query[name] = value
    query_templates = [endpoint.path, *(endpoint.query or {}).values()]
    for param in endpoint.parameters or []:
        name = param["name"]
        wanted = param.get("location") == "query" and params.get(name) is not None and name not in query
        if wanted and not mentions(query_templates, name):
            query[name] = _scalar(params[name])
    return urlunsplit(parts._replace(query="")), query


def build_headers(
    endpoint: Endpoint, context: dict, params: dict, missing: list[str]
) -> tuple[dict, set[str], list[str]]:
    """The connection's default headers overridden by the endpoint's, rendered.

    Returns (headers, names shown redacted, values scrubbed wherever they appear). Configured headers
    are stored as secrets, so all but the harmless ones (Accept, Content-Type...) are shown redacted;
    their configured values are scrubbed everywhere, as are values from a secret reference or in a
    header whose name says it is one.
    """
    merged: dict[str, tuple[str, str]] = {}
    for templates in (endpoint.connection.default_headers or {}, endpoint.headers or {}):
        merged.update({name.lower(): (name, template) for name, template in templates.items()})
    headers: dict[str, str] = {}
    secret_names: set[str] = set()
    secret_values: list[str] = []
    for lower, (name, template) in merged.items():
        reference = secret_refs.reference_scheme(template)
        if reference:  # `env:NAME` / `file:/path`: the secret itself, sent verbatim
            try:
                headers[name] = _header_value(name, secret_refs.resolve(template))
            except secret_refs.SecretUnavailable as exc:
                raise PrepareError(f"header {name}: {exc}") from None
        else:
            headers[name] = _header_value(name, _render(template, context, missing, templating.render_header))
        if lower not in HARMLESS_HEADERS:
            secret_names.add(lower)
        # SPEC §3: configured headers are secrets. A literal value (or a reference) is scrubbed
        # wherever it appears, whatever the header's name; a value rendered from the conversation's
        # variables is not configuration, so only a credential-like name makes it one.
        literal = headers[name] == template and lower not in HARMLESS_HEADERS
        if reference or literal or SENSITIVE_NAME.search(lower):
            secret_values.append(headers[name])
    templates = [t for _, t in merged.values()]
    for param in endpoint.parameters or []:
        name = param["name"]
        wanted = param.get("location") == "header" and params.get(name) is not None and name.lower() not in merged
        if wanted and not mentions(templates, name):
            headers[name] = _header_value(name, _scalar(params[name]))
    return headers, secret_names, secret_values


def _header_value(name: str, value: str) -> str:
    """`value` if HTTP can carry it in a header (no CR/LF/NUL, Latin-1 only), else TemplateError.

    Surrounding spaces are dropped: HTTP ignores them, and requests refuses a leading one (with an
    exception that quotes the value).
    """
    value = value.strip(" \t")
    if "\r" in value or "\n" in value or "\0" in value:
        raise templating.TemplateError(f"header {name} would contain a line break")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise templating.TemplateError(f"header {name} can only contain Latin-1 characters") from None
    return value


def _body_params(endpoint: Endpoint, params: dict) -> dict:
    return {
        p["name"]: params[p["name"]]
        for p in endpoint.parameters or []
        if p.get("location") == "body" and p["name"] in params
    }


def build_body(endpoint: Endpoint, context: dict, params: dict, missing: list[str]) -> tuple[Any, Any, Any]:
    """(data, files, display body) for the endpoint's body type."""
    kind, template = endpoint.body_type, endpoint.body_template or ""
    if kind == BodyType.NONE:
        return None, None, None
    if kind == BodyType.JSON:
        if template.strip():
            rendered = templating.render_json(template, context)
            missing.extend(rendered.missing)
            value = rendered.value
        else:
            value = _body_params(endpoint, params)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(), None, value
    if kind in (BodyType.TEXT, BodyType.RAW):
        text = _render(template, context, missing)
        return text.encode(), None, text
    spec = json.loads(template) if template.strip() else {}
    if kind == BodyType.FORM:
        fields = {name: _render(t, context, missing) for name, t in spec.items()} if spec else {}
        if not spec:
            fields = {name: _scalar(v) for name, v in _body_params(endpoint, params).items()}
        encoded = urlencode(fields)
        return encoded.encode(), None, encoded
    return _multipart(spec, context, missing)


def _multipart(spec: dict, context: dict, missing: list[str]) -> tuple[dict, dict, dict]:
    fields = {name: _render(t, context, missing) for name, t in (spec.get("fields") or {}).items()}
    files: dict[str, tuple[str, bytes, str]] = {}
    shown: dict[str, dict] = {}
    for name, file in (spec.get("files") or {}).items():
        content = _render(file.get("content", ""), context, missing)
        if file.get("encoding") == "base64":
            try:
                raw = base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                raise PrepareError(f"multipart file {name}: content is not valid base64") from None
        else:
            raw = content.encode()
        filename = file.get("filename") or name
        content_type = file.get("content_type") or "application/octet-stream"
        files[name] = (filename, raw, content_type)
        shown[name] = {"filename": filename, "content_type": content_type, "size": len(raw)}
    return fields, files, {"fields": fields, "files": shown}


def prepare_request(
    endpoint: Endpoint,
    params: dict,
    *,
    variables: dict | None = None,
    conversation: dict | None = None,
    row: dict | None = None,
    scope: dict | None = None,
) -> PreparedRequest:
    """Render the request of `endpoint` for validated `params`, unauthenticated; raises TemplateError or
    PrepareError (each a `failure`). `scope`: see build_context."""
    context = build_context(endpoint, params, variables, conversation, row, scope)
    missing: list[str] = []
    url, query = build_url(endpoint, context, params, missing)
    headers, secret_header_names, header_secrets = build_headers(endpoint, context, params, missing)
    data, files, display_body = build_body(endpoint, context, params, missing)
    if endpoint.body_type in DEFAULT_CONTENT_TYPES and not any(h.lower() == "content-type" for h in headers):
        headers["Content-Type"] = DEFAULT_CONTENT_TYPES[endpoint.body_type]
    prepared = PreparedRequest(
        method=endpoint.method,
        url=url,
        headers=headers,
        data=data,
        files=files,
        display_body=display_body,
        missing=list(dict.fromkeys(missing)),
        params=params,
        context=context,
        base_url=url,
        base_query=query,
        base_headers=headers,
        secret_header_names=secret_header_names,
        header_secrets=header_secrets,
    )
    prepared.set_target(dict(headers), dict(query), Redactor(header_names=secret_header_names, values=header_secrets))
    return prepared
