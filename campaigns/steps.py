"""A campaign's API steps before and after each call (SPEC §15), run through the one executor.

A step is `{"type": "api_call", "endpoint", "params", "map", "on_error", "branch", "only_if"}`.
Its templates see `row.*` (the row's columns), `variables.*` (what earlier steps mapped; also at the
top level, like session variables) and, after the call, `call.*` (`id`, `status`, `duration`,
`summary`), `extracted.*` and `ai_classification` (the disposition): seed 000's names.

Error policy of a step whose result is not `success`: `continue` (carry on), `retry` (the executor
tries any non-success again within the connection's retry policy; then as `fail`), `fail` (stop: the
row fails with `step_failed`), `branch` (run the step's `branch` steps, then carry on with the next).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from campaigns.models import Campaign, CampaignRow
from integrations import executor, templating
from integrations.mapping import apply_mapping
from integrations.models import Endpoint, Trigger
from integrations.rendering import build_context
from tenants import scoping


@dataclass
class StepsOutcome:
    ok: bool = True
    variables: dict = field(default_factory=dict)
    error: str = ""
    log: list[dict] = field(default_factory=list)


def after_call_scope(call: Any) -> dict:
    """`call.*`, `extracted.*` and `ai_classification` of a finished call (its outcome read defensively)."""
    outcome = call.call_outcome if isinstance(call.call_outcome, dict) else {}
    extracted = outcome.get("extracted") if isinstance(outcome.get("extracted"), dict) else {}
    disposition = outcome.get("disposition") if isinstance(outcome.get("disposition"), str) else ""
    summary = outcome.get("summary") if isinstance(outcome.get("summary"), str) else ""
    return {
        "call": {"id": str(call.pk), "status": call.status, "duration": call.duration, "summary": summary},
        "extracted": extracted,
        "ai_classification": disposition,
    }


def run_steps(campaign: Campaign, row: CampaignRow, steps: list[dict], scope: dict | None = None) -> StepsOutcome:
    """Run `steps` for `row` in order; returns the variables they mapped (merged over the row's) and
    whether the row may go on. Never raises for a step that went wrong: that is what `ok` says."""
    outcome = StepsOutcome(variables=dict(row.variables or {}))
    _run(campaign, row, steps, dict(scope or {}), outcome, depth=0)
    return outcome


def _run(campaign: Campaign, row: CampaignRow, steps: list[dict], scope: dict, outcome: StepsOutcome, depth: int):
    for index, step in enumerate(steps, start=1):
        if not _applies(step.get("only_if"), scope):
            outcome.log.append({"step": index, "skipped": "only_if"})
            continue
        ok, error = _run_one(campaign, row, step, scope, outcome)
        if ok or step.get("on_error") == "continue":
            continue
        if step.get("on_error") == "branch":
            _run(campaign, row, step.get("branch") or [], scope, outcome, depth + 1)
            if not outcome.ok:
                return
            continue
        outcome.ok, outcome.error = False, error
        return


def _applies(only_if: dict | None, scope: dict) -> bool:
    if not only_if:
        return True
    call = scope.get("call") or {}
    if "call_status" in only_if and call.get("status") not in only_if["call_status"]:
        return False
    return not ("disposition" in only_if and scope.get("ai_classification") not in only_if["disposition"])


def _run_one(campaign: Campaign, row: CampaignRow, step: dict, scope: dict, outcome: StepsOutcome):
    endpoints = scoping.for_tenant(Endpoint.objects.for_execution(), campaign.tenant)
    endpoint = endpoints.filter(pk=step["endpoint"]).first()
    if endpoint is None:
        error = f"step endpoint {step['endpoint']} no longer exists"
        outcome.log.append({"endpoint": step["endpoint"], "status": "failure", "error": error})
        return False, error
    variables = outcome.variables
    step_scope = {**scope, "variables": variables}
    try:
        params = _render_params(endpoint, step.get("params") or {}, variables, row.data, step_scope)
    except templating.TemplateError as exc:
        error = f"{endpoint.name}: invalid template: {exc}"
        outcome.log.append({"endpoint": endpoint.name, "status": "failure", "error": error})
        return False, error
    result = executor.execute(
        endpoint,
        params=params,
        variables=variables,
        row=row.data,
        scope=step_scope,
        trigger=Trigger.API,
        actor=f"campaign {campaign.name[:100]} row {row.row}",
        on_error=step.get("on_error", "fail"),
    )
    shown = result.to_dict()  # secrets scrubbed
    outcome.log.append({"endpoint": endpoint.name, "status": shown["status"], "status_code": shown["status_code"]})
    if not result.ok:
        return False, f"{endpoint.name}: {shown.get('error') or shown['status']}"
    if step.get("map"):
        mapped, _ = apply_mapping(step["map"], result.body, result.status_code, result.headers)
    else:
        mapped = result.mapped
    variables.update(mapped or {})
    return True, ""


def _render_params(endpoint: Endpoint, templates: dict, variables: dict, row_data: dict, scope: dict) -> dict:
    """The step's params with their templates rendered in the step's context (non-text values as given)."""
    context = build_context(endpoint, {}, variables, None, row_data, scope)
    rendered = {}
    for name, template in templates.items():
        rendered[name] = templating.render(template, context).value if isinstance(template, str) else template
    return rendered
