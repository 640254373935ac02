"""The test consoles (SPEC §5): one service function each, used by the REST actions and the admin pages."""

from __future__ import annotations

import time
from typing import Any

from integrations import auth, executor, templating
from integrations.models import Connection, Endpoint, Method, Trigger
from integrations.rendering import PrepareError, shadowed_names
from tenants import audit
from tenants.models import AuditAction
from tenants.scoping import TenantContext


def run_connection_test(connection: Connection, *, ctx: TenantContext | None = None) -> dict[str, Any]:
    """Check the credential (the type's `test()` hook) and reach the base URL with it.

    Returns `{"ok", "status_code", "latency_ms", "error", "auth", "request"}`; ok means the base URL
    answered and did not reject the credentials (401/403). Records an AuditEvent `tested`.
    """
    started = time.monotonic()
    outcome: dict[str, Any] = {"ok": False, "status_code": None, "latency_ms": 0, "error": None, "auth": None}
    probe = Endpoint(tenant=connection.tenant, connection=connection, method=Method.GET, name="connection test")
    try:
        outcome["auth"] = _auth_check(connection)
        prepared = executor.prepare(probe, params={})
    except (auth.CredentialUnavailable, templating.TemplateError, PrepareError) as exc:
        outcome["error"] = exc.result_error() if isinstance(exc, auth.CredentialUnavailable) else str(exc)
    else:
        outcome["request"] = prepared.redacted()
        outcome.update(_probe(probe, prepared))
    outcome["latency_ms"] = int((time.monotonic() - started) * 1000)
    audit.record_event(ctx, AuditAction.TESTED, connection)
    return outcome


def _auth_check(connection: Connection) -> dict | None:
    authenticator = auth.for_credential(connection.credential)
    checked = authenticator.test() if authenticator else None
    if checked is not None and not checked.ok:
        raise auth.CredentialUnavailable(checked.message or "the credential test failed")
    return {"ok": True, "message": checked.message, **checked.details} if checked else None


def _probe(probe: Endpoint, prepared) -> dict[str, Any]:
    response, failure = executor.send_once(probe, prepared, time.monotonic() + probe.connection.total_deadline)
    if failure is not None or response is None:
        return {"error": prepared.redactor.text(str(failure))}
    if response.status_code in (401, 403):
        return {"status_code": response.status_code, "error": f"credentials rejected (HTTP {response.status_code})"}
    return {"ok": True, "status_code": response.status_code}


def run_endpoint_test(
    endpoint: Endpoint,
    *,
    params: dict | None = None,
    variables: dict | None = None,
    row: dict | None = None,
    extracted: dict | None = None,
    ctx: TenantContext | None = None,
) -> dict[str, Any]:
    """Make the real call and return what the console shows: the redacted request, the result (SPEC §4
    shape), the rendered response template, and warnings. Records an AuditEvent `tested`.

    `row` and `extracted` let a campaign step's templates (`{{row.customer_id}}`,
    `{{extracted.preferred_date}}`) be tried; a session variable named like a reserved namespace is
    reported as a warning, since the namespace hides it.
    """
    result = executor.execute(
        endpoint,
        params=params or {},
        variables=variables or {},
        row=row or {},
        scope={"extracted": extracted or {}},
        trigger=Trigger.TEST,
        actor=ctx,
    )
    audit.record_event(ctx, AuditAction.TESTED, endpoint)
    shadowed = [
        f"session variable '{name}' is hidden by the reserved name {name}: rename it"
        for name in shadowed_names(variables)
    ]
    return {
        "request": result.request.redacted() if result.request else None,
        "result": result.to_dict(),
        "say": result.request.redactor.text(result.say) if result.request else result.say,
        "latency_ms": result.duration_ms,
        "warnings": shadowed + result.warnings,
    }
