"""The executor: the one way an endpoint is called, by the test console, rules, tools and tasks alike.

`execute()` validates the parameters, renders the request (`integrations.rendering`), authenticates it
(`integrations.auth`), sends it through the SSRF-safe client (`integrations.http`) with the
connection's retry policy, maps the response, writes an ApiCallLog row and returns an
`ExecutionResult` whose `to_dict()` is SPEC §4's result shape. It never raises for a call that went
wrong: that is what the result's status says.

Statuses: `success` (2xx), `error` (another status arrived), `exception` (sent, no usable response),
`failure` (refused before sending: bad parameters or template, credential unavailable, destination
not allowed).
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import TYPE_CHECKING, Any

from integrations import auth, calllog, http, response_cache, retries, signing, templating
from integrations.auth import CredentialUnavailable
from integrations.mapping import apply_mapping
from integrations.models import CallStatus, ErrorPolicy, Trigger
from integrations.parameters import ParameterError, validate_arguments
from integrations.redaction import Redactor
from integrations.rendering import PreparedRequest, PrepareError, prepare_request
from integrations.results import ExecutionResult
from tenants import metrics

if TYPE_CHECKING:
    from integrations.models import Endpoint

__all__ = ["ExecutionResult", "authenticate", "execute", "prepare", "send_once"]

logger = logging.getLogger(__name__)

TRIGGERS = frozenset(Trigger.values)


def prepare(
    endpoint: Endpoint,
    *,
    params: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    conversation: dict[str, Any] | None = None,
    row: dict[str, Any] | None = None,
    scope: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> PreparedRequest:
    """Validate `params` and render the request without sending it. `.redacted()` shows it.

    `dry_run=True` (rule dry runs, previews) also keeps authentication offline: no OAuth token is
    fetched and no challenge step runs, so nothing at all leaves the process.
    Raises `ParameterError`, `templating.TemplateError`, `PrepareError` or `CredentialUnavailable`.
    """
    if variables is None and conversation is not None:
        variables = conversation.get("variables")
    values = validate_arguments(endpoint, params)
    prepared = prepare_request(endpoint, values, variables=variables, conversation=conversation, row=row, scope=scope)
    prepared.authenticator = auth.for_credential(endpoint.connection.credential)
    authenticate(prepared, dry_run=dry_run)
    return prepared


def authenticate(prepared: PreparedRequest, *, dry_run: bool = False) -> None:
    """Apply the request's credential (`prepared.authenticator`) to the rendered request.

    Also after the credential obtained a new token (the executor's re-authentication). `dry_run`:
    for display only — no token is fetched and no challenge step runs (nothing is sent). Raises
    `CredentialUnavailable`.
    """
    target = auth.AuthTarget(headers=dict(prepared.base_headers), query=dict(prepared.base_query))
    names, query_names, values = set(prepared.secret_header_names), set(), list(prepared.header_secrets)
    authenticator = prepared.authenticator
    if authenticator is not None:
        (authenticator.apply_dry_run if dry_run else authenticator.apply)(target)
        names |= authenticator.redacted_headers()
        query_names = authenticator.redacted_query()
        values += authenticator.secret_values()
    redactor = Redactor(header_names=names, query_names=query_names, values=values)
    prepared.set_target(target.headers, target.query, redactor)


def execute(
    endpoint: Endpoint,
    *,
    params: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    trigger: str = Trigger.API,
    conversation: dict[str, Any] | None = None,
    actor: Any = None,
    row: dict[str, Any] | None = None,
    scope: dict[str, Any] | None = None,
    log: bool = True,
    on_error: str = ErrorPolicy.CONTINUE,
) -> ExecutionResult:
    """Call `endpoint` for real and return the result (never raises for a failed call).

    `variables` are the session variables (default: the conversation's), `conversation` the template's
    `conversation.*` (a plain dict, `Conversation.template_context()`), `params` the call's
    arguments, `trigger` one of test/rule/tool/api and `actor` who caused it (a TenantContext, a user,
    or a label; both recorded in the ApiCallLog), `row` a dataset row, `scope` more names for the
    templates (see rendering.build_context). `log=False` skips the log row.
    `on_error` is the caller's error policy: with `retry`, any non-success (not only the connection's
    retryable statuses) is tried again, within the same policy (`1 + max_retries` attempts, backoff,
    `Retry-After`, the total deadline) and one log row; the other policies are the caller's to apply.
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    if on_error not in ErrorPolicy.values:
        raise ValueError(f"unknown error policy {on_error!r}")
    started = time.monotonic()
    result = ExecutionResult(status=CallStatus.FAILURE, include_raw=endpoint.include_raw)
    result.request = _prepare_for(
        result, endpoint, params=params, variables=variables, conversation=conversation, row=row, scope=scope
    )
    if result.request is not None:
        result.warnings.extend(f"missing variable: {name}" for name in result.request.missing)
        try:
            _send(endpoint, result, result.request, started, retry_errors=on_error == ErrorPolicy.RETRY)
        except Exception as exc:  # the contract is a result, never a raise: report a bug as an exception
            _unexpected(endpoint, result, exc)
    elapsed = time.monotonic() - started
    result.duration_ms = int(elapsed * 1000)
    # Ids, not names, label the series: stable across renames and free (no query per call).
    metrics.observe_execution(str(endpoint.tenant_id), str(endpoint.connection_id), result.status, elapsed)
    if log:
        result.log_id = calllog.record(endpoint, result, trigger, actor=_actor_label(actor))
    if result.status != CallStatus.SUCCESS:
        _log_outcome(endpoint, result, trigger)
    return result


def _prepare_for(result: ExecutionResult, endpoint: Endpoint, **inputs: Any) -> PreparedRequest | None:
    """`prepare()`, with a refusal before sending written into `result.error` (status stays failure)."""
    try:
        return prepare(endpoint, **inputs)
    except ParameterError as exc:
        result.error = str(exc)
    except templating.TemplateError as exc:
        result.error = f"invalid template: {exc}"
    except PrepareError as exc:
        result.error = str(exc)
    except CredentialUnavailable as exc:
        result.error = exc.result_error()
    return None


def _log_outcome(endpoint: Endpoint, result: ExecutionResult, trigger: str) -> None:
    redactor = result.request.redactor if result.request else None
    logger.info(
        "endpoint call %s: %s",
        result.status,
        redactor.text(result.error or "") if redactor else result.error,
        extra={"endpoint_id": str(endpoint.pk), "tenant_id": str(endpoint.tenant_id), "trigger": trigger},
    )


def _unexpected(endpoint: Endpoint, result: ExecutionResult, exc: Exception) -> None:
    result.status, result.error = CallStatus.EXCEPTION, f"unexpected error ({type(exc).__name__})"
    # The traceback goes through the redactor: exception messages may quote header values.
    trace = "".join(traceback.format_exception(exc))
    redactor = result.request.redactor if result.request else Redactor()
    logger.error("endpoint call failed unexpectedly: %s", redactor.text(trace))


def _actor_label(actor: Any) -> str:
    if actor is None:
        return ""
    label = getattr(actor, "actor_label", None)
    if label is None and hasattr(actor, "get_username"):
        label = f"user {actor.get_username()}"
    return str(label if label is not None else actor)[:300]


def _send(
    endpoint: Endpoint, result: ExecutionResult, prepared: PreparedRequest, started: float, *, retry_errors: bool
) -> None:
    cache_key = response_cache.key_for(endpoint, prepared)
    if cache_key:
        hit = response_cache.get(cache_key)
        if hit is not None:
            result.cached = True
            _finish(endpoint, result, prepared, *hit)
            return
    response = _send_with_retries(endpoint, result, prepared, started, retry_errors=retry_errors)
    if response is not None:
        _finish(endpoint, result, prepared, response.status_code, response.headers, response.content)
        if cache_key and result.status == CallStatus.SUCCESS:
            response_cache.put(cache_key, response, endpoint.cache_ttl)


def _send_with_retries(
    endpoint: Endpoint, result: ExecutionResult, prepared: PreparedRequest, started: float, *, retry_errors: bool
) -> http.HttpResponse | None:
    """The one retry loop: the connection's policy within its total deadline, one re-authentication
    when the credentials are rejected; `retry_errors` also retries any non-success (`on_error: retry`)."""
    connection = endpoint.connection
    policy = connection.retry_policy
    deadline = started + connection.total_deadline
    reauthenticated = False
    retries_left = policy["max_retries"]
    while True:
        result.attempts += 1
        response, failure = send_once(endpoint, prepared, deadline)
        if failure is not None and failure.refused:
            result.status, result.error = CallStatus.FAILURE, str(failure)
            return None
        if response is not None and not reauthenticated and _credentials_rejected(prepared, response):
            reauthenticated = True
            if _reauthenticate(prepared, response, result):
                continue
            if result.status == CallStatus.FAILURE and result.error:
                return None
        delay = retries.next_delay(
            policy,
            endpoint.method,
            response,
            failure,
            attempt=result.attempts,
            retries_left=retries_left,
            any_error=retry_errors,
        )
        if delay is None or time.monotonic() + delay >= deadline:
            break
        retries_left -= 1
        time.sleep(delay)
    if failure is not None:
        result.status, result.error = CallStatus.EXCEPTION, str(failure)
        return None
    return response


def _credentials_rejected(prepared: PreparedRequest, response: Any) -> bool:
    """A 401, or the credential type's own sign of an expired token (e.g. a body condition)."""
    return prepared.authenticator is not None and prepared.authenticator.token_rejected(response)


def _reauthenticate(prepared: PreparedRequest, response: Any, result: ExecutionResult) -> bool:
    if prepared.authenticator is None:
        return False
    try:
        if prepared.authenticator.on_unauthorized(response):
            authenticate(prepared)
            return True
    except CredentialUnavailable as exc:
        result.status, result.error = CallStatus.FAILURE, exc.result_error()
    return False


def send_once(
    endpoint: Endpoint, prepared: PreparedRequest, deadline: float
) -> tuple[http.HttpResponse | None, http.OutboundError | None]:
    """One attempt with the endpoint's (else the connection's) settings: (response, None) or (None, error).

    `deadline` is a `time.monotonic()` instant.
    """
    connection = endpoint.connection
    follow = endpoint.follow_redirects if endpoint.follow_redirects is not None else connection.follow_redirects
    try:
        response = http.send(
            prepared.method,
            prepared.url,
            headers=prepared.headers,
            data=prepared.data,
            files=prepared.files,
            connect_timeout=endpoint.connect_timeout or connection.connect_timeout,
            read_timeout=endpoint.read_timeout or connection.read_timeout,
            deadline=max(deadline - time.monotonic(), 0.001),
            max_bytes=connection.max_response_bytes,
            verify_tls=connection.verify_tls,
            follow_redirects=follow,
            pool_key=str(connection.pk),
            signer=signing.signer_for(connection),
        )
    except http.OutboundError as exc:
        return None, exc
    return response, None


def _finish(
    endpoint: Endpoint,
    result: ExecutionResult,
    prepared: PreparedRequest,
    status_code: int,
    headers: Any,
    content: bytes,
) -> None:
    result.status_code = status_code
    result.headers = {name.lower(): value for name, value in headers.items()}
    result.response_size = len(content)
    result.raw_text = _decode(content, result.headers.get("content-type", ""))
    result.body = _parse_body(result.headers.get("content-type", ""), result.raw_text)
    if 200 <= status_code < 300:
        result.status = CallStatus.SUCCESS
    else:
        result.status, result.error = CallStatus.ERROR, f"HTTP {status_code}"
    if endpoint.response_mapping:
        result.mapped, unresolved = apply_mapping(endpoint.response_mapping, result.body, status_code, result.headers)
        result.warnings.extend(f"unmapped path: {path}" for path in unresolved)
    if endpoint.response_template:
        context = {**prepared.context, **result.mapped}
        context.update(response=result.body, status_code=status_code, headers=result.headers, mapped=result.mapped)
        try:
            rendered = templating.render(endpoint.response_template, context)
        except templating.TemplateError as exc:  # e.g. a render limit hit by a huge response
            result.warnings.append(f"response template: {exc}")
        else:
            result.say = rendered.value
            result.warnings.extend(f"missing variable: {name}" for name in rendered.missing)


def _decode(content: bytes, content_type: str) -> str:
    charset = "utf-8"
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    try:
        return content.decode(charset, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def _parse_body(content_type: str, text: str) -> Any:
    if not text:
        return text
    if "json" in content_type or text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
