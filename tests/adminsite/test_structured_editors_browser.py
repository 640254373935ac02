"""The admin's structured editors in headless Chromium: rows in, the API's JSON out, the same validation."""

from __future__ import annotations

import pytest

from calls.models import Agent
from integrations.models import Connection, Endpoint
from rules.definitions import parse_actions, parse_trigger, replace_actions
from rules.models import Rule
from tenants.models import Role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def endpoint(tenant):
    connection = Connection.objects.create(tenant=tenant, name="Shop", base_url="https://shop.example")
    return Endpoint.objects.create(
        tenant=tenant,
        connection=connection,
        name="Orders",
        tool_name="find_orders",
        path="/orders",
        query={"q": "{{term}}"},
        headers={"X-Api-Key": "secret-value-1234"},
        parameters=[{"name": "term", "location": "query", "type": "string", "description": "Search", "example": "10"}],
        response_mapping={"id": "data.id"},
    )


def editor(page, field: str):
    return page.locator(f'.structured-editor[data-for="{field}"]')


def add_row(page, field: str, **cells) -> None:
    box = editor(page, field)
    box.locator(".structured-add").click()
    row = box.locator("tbody tr.structured-row").last
    for key, value in cells.items():
        cell = row.locator(f'[data-key="{key}"]')
        if isinstance(value, bool):
            cell.set_checked(value)
        elif cell.evaluate("node => node.tagName") == "SELECT":
            cell.select_option(value)
        else:
            cell.fill(value)


def test_endpoint_fields_are_edited_as_rows_and_saved_as_json(page, admin_login, tenant, make_staff_user, endpoint):
    make_staff_user("olga", tenant, Role.ADMIN)
    admin_login("olga")
    page.goto(f"/admin/integrations/endpoint/{endpoint.pk}/change/")
    # the raw JSON boxes are replaced by rows showing what is stored
    for field in ("query", "headers", "parameters", "response_mapping"):
        assert editor(page, field).is_visible()
        assert page.locator(f"textarea[name={field}]").is_hidden()
    assert editor(page, "query").locator('[data-key="value"]').input_value() == "{{term}}"
    header_value = editor(page, "headers").locator('[data-key="value"]')
    assert header_value.input_value() == ""  # write-only: the stored value is never sent to the page
    assert header_value.get_attribute("placeholder") == "••••1234 (stored)"
    assert "secret-value-1234" not in page.content()
    # when rows are added and removed
    add_row(page, "query", name="page", value="{{page}}")
    add_row(page, "headers", name="X-Trace", value="abc")
    editor(page, "response_mapping").locator(".structured-remove").click()
    add_row(page, "response_mapping", name="price", value="data.price.amount")
    add_row(page, "parameters", name="page", type="integer", required=True, default="1", enum="[1, 2, 3]")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/integrations/endpoint/")
    # then the stored JSON is the API's shape, the stored header secret kept, untouched values as they were
    endpoint.refresh_from_db()
    assert endpoint.query == {"q": "{{term}}", "page": "{{page}}"}
    assert endpoint.headers == {"X-Api-Key": "secret-value-1234", "X-Trace": "abc"}
    assert endpoint.response_mapping == {"price": "data.price.amount"}
    term, page_param = endpoint.parameters
    assert term["name"] == "term" and term["description"] == "Search" and term["example"] == "10"  # still text
    assert page_param["name"] == "page" and page_param["location"] == "query" and page_param["type"] == "integer"
    assert page_param["required"] is True and page_param["default"] == 1 and page_param["enum"] == [1, 2, 3]


def test_rows_are_checked_by_the_same_validation(page, admin_login, tenant, make_staff_user, endpoint):
    make_staff_user("olga", tenant, Role.ADMIN)
    admin_login("olga")
    page.goto(f"/admin/integrations/endpoint/{endpoint.pk}/change/")
    add_row(page, "parameters", name="not an identifier")
    add_row(page, "headers", name="Bad Header", value="x")
    page.click("input[name=_save]")
    page.locator(".errornote").wait_for()
    errors = page.locator(".errorlist").all_inner_texts()
    assert any("parameters[1].name: must be an identifier" in text for text in errors)
    assert any("'Bad Header' is not a valid header name." in text for text in errors)
    # the page keeps what was typed (as rows) and nothing was saved
    assert editor(page, "parameters").locator("tbody tr.structured-row").count() == 2
    endpoint.refresh_from_db()
    assert len(endpoint.parameters) == 1 and endpoint.headers == {"X-Api-Key": "secret-value-1234"}


def test_duplicate_names_are_flagged_before_sending(page, admin_login, tenant, make_staff_user, endpoint):
    make_staff_user("olga", tenant, Role.ADMIN)
    admin_login("olga")
    page.goto(f"/admin/integrations/endpoint/{endpoint.pk}/change/")
    add_row(page, "query", name="q", value="{{other}}")
    problem = editor(page, "query").locator(".structured-problem")
    assert problem.count() == 1
    assert problem.inner_text() == "Two rows have the same name: rename or remove one."
    page.click("input[name=_save]")
    assert "/change/" in page.url  # not sent
    endpoint.refresh_from_db()
    assert endpoint.query == {"q": "{{term}}"}


def test_rule_action_params_are_rows_also_in_a_new_inline(page, admin_login, tenant, make_staff_user, endpoint):
    rule = Rule(tenant=tenant, name="Orders", **parse_trigger({"type": "always"}))
    rule.save()
    action = {"type": "CALL_API", "endpoint": str(endpoint.pk), "params": {"term": "{{message}}"}}
    replace_actions(rule, parse_actions([action], tenant))
    make_staff_user("olga", tenant, Role.ADMIN)
    admin_login("olga")
    page.goto(f"/admin/rules/rule/{rule.pk}/change/")
    params = editor(page, "actions-0-params")
    assert params.locator('[data-key="name"]').input_value() == "term"
    params.locator('[data-key="value"]').fill("{{message}} today")
    # an inline added with "Add another" gets its editor too
    page.locator(".add-row a").click()
    assert editor(page, "actions-1-params").is_visible()
    page.locator('select[name="actions-1-type"]').select_option("REPLY_TEXT")
    page.fill('textarea[name="actions-1-template"]', "Looking it up")
    page.fill('input[name="actions-1-position"]', "2")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/rules/rule/")
    first, second = rule.actions.order_by("position")
    assert first.params == {"term": "{{message}} today"}
    assert second.type == "REPLY_TEXT" and second.params == {}


def test_an_agents_analysis_and_verification_are_rows(page, admin_login, tenant, make_staff_user):
    agent = Agent.objects.create(
        tenant=tenant,
        name="Collections",
        agent_code="collections",
        input_schema={"fields": ["date_of_birth", "amount_due"]},
        analysis={
            "dispositions": ["interested", "not_interested"],
            "extract": [{"name": "preferred_date", "type": "date", "description": "the promised date"}],
        },
    )
    make_staff_user("olga", tenant, Role.ADMIN)
    admin_login("olga")
    page.goto(f"/admin/calls/agent/{agent.pk}/change/")
    analysis = editor(page, "analysis")
    dispositions = analysis.locator('[data-section="dispositions"]')
    assert dispositions.locator("h4").inner_text() == "Dispositions (how a call can end)"
    extract = analysis.locator('[data-section="extract"]')
    assert dispositions.locator('[data-key="value"]').evaluate_all("nodes => nodes.map(n => n.value)") == [
        "interested",
        "not_interested",
    ]
    assert extract.locator('[data-key="type"]').input_value() == "date"
    # remove a disposition, add one, add an enum value to extract, and a verification key
    dispositions.locator(".structured-remove").nth(1).click()
    dispositions.locator(".structured-add").click()
    dispositions.locator('[data-key="value"]').last.fill("wrong_number")
    extract.locator(".structured-add").click()
    row = extract.locator("tbody tr.structured-row").last
    row.locator('[data-key="name"]').fill("slot")
    row.locator('[data-key="type"]').select_option("enum")
    row.locator('[data-key="values"]').fill('["morning", "evening"]')
    add_row(page, "verification", value="date_of_birth")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/calls/agent/")
    agent.refresh_from_db()
    assert agent.analysis["dispositions"] == ["interested", "wrong_number"]
    assert [field["name"] for field in agent.analysis["extract"]] == ["preferred_date", "slot"]
    assert agent.analysis["extract"][1]["type"] == "enum"
    assert agent.analysis["extract"][1]["values"] == ["morning", "evening"]
    assert agent.verification == ["date_of_birth"]


def test_an_agents_analysis_rows_are_validated_like_the_api(page, admin_login, tenant, make_staff_user):
    agent = Agent.objects.create(tenant=tenant, name="Collections", agent_code="collections")
    make_staff_user("olga", tenant, Role.ADMIN)
    admin_login("olga")
    page.goto(f"/admin/calls/agent/{agent.pk}/change/")
    extract = editor(page, "analysis").locator('[data-section="extract"]')
    extract.locator(".structured-add").click()
    extract.locator('[data-key="name"]').fill("1st choice")
    page.click("input[name=_save]")
    page.locator(".errornote").wait_for()
    assert "name must be letters, digits and underscores" in page.locator(".errorlist").first.inner_text()
    agent.refresh_from_db()
    assert agent.analysis == {}
