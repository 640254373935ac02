from __future__ import annotations

import pytest

from rules.models import Channel, Conversation, Message, Rule, TriggerType, WidgetKey
from tenants.models import Role
from tests.rules.conftest import reply


@pytest.fixture
def staff(client, tenant, make_staff_user):
    make_staff_user("editor", tenant, Role.ADMIN)
    client.login(username="editor", password="pw-for-tests-1")
    return client


def inline_management(prefix="actions", total=1):
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def rule_form(**overrides):
    data = {
        "name": "Hi",
        "priority": "10",
        "is_active": "on",
        "trigger_type": "regex",
        "pattern": "/hello/i",
        "flags": "",
        "condition": "",
        "fallback_text": "",
        **inline_management(),
        "actions-0-position": "0",
        "actions-0-type": "REPLY_TEXT",
        "actions-0-params": "{}",
        "actions-0-on_error": "continue",
        "actions-0-template": "Hello {name}",
    }
    return {**data, **overrides}


def test_rule_editor_saves_actions_inline_and_refuses_bad_patterns(staff, tenant):
    response = staff.post("/admin/rules/rule/add/", rule_form())
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    rule = Rule.objects.get()
    assert (rule.tenant, rule.pattern, rule.flags) == (tenant, "hello", "i")
    assert list(rule.actions.values_list("type", "template")) == [("REPLY_TEXT", "Hello {name}")]

    refused = staff.post("/admin/rules/rule/add/", rule_form(name="Bad", pattern="(?<=a)b"))
    assert refused.status_code == 200
    assert "look-behind" in refused.content.decode()
    assert Rule.objects.count() == 1


def test_conversations_show_messages_read_only_and_other_tenants_are_hidden(staff, tenant, other_tenant):
    mine = Conversation.objects.create(tenant=tenant)
    Message.objects.create(tenant=tenant, conversation=mine, role="visitor", text="hello from a visitor")
    theirs = Conversation.objects.create(tenant=other_tenant)
    page = staff.get(f"/admin/rules/conversation/{mine.id}/change/")
    assert page.status_code == 200
    assert "hello from a visitor" in page.content.decode()
    assert staff.get(f"/admin/rules/conversation/{theirs.id}/change/").status_code == 302  # not found → index
    listing = staff.get("/admin/rules/conversation/").content.decode()
    assert f"/admin/rules/conversation/{mine.id}/change/" in listing
    assert f"/admin/rules/conversation/{theirs.id}/change/" not in listing


def test_widget_keys_in_the_admin(staff, tenant):
    response = staff.post(
        "/admin/rules/widgetkey/add/",
        {"name": "Shop", "allowed_origins": '["https://Shop.example"]', "is_active": "on"},
    )
    assert response.status_code == 302
    key = WidgetKey.objects.get()
    assert key.allowed_origins == ["https://shop.example"]
    assert key.key.startswith("swb_pk_")
    bad = staff.post(
        "/admin/rules/widgetkey/add/", {"name": "Bad", "allowed_origins": '["ftp://x"]', "is_active": "on"}
    )
    assert bad.status_code == 200 and WidgetKey.objects.count() == 1


def test_dry_run_page_shows_the_same_report(staff, tenant, make_rule):
    make_rule(tenant, "Hi", trigger={"type": "regex", "pattern": r"hello (?P<who>\w+)"}, actions=[reply("Hi {who}")])
    page = staff.post(
        "/admin/rules/rule/dry-run/", {"tenant": str(tenant.id), "message": "hello Ada", "variables": "{}"}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Matched rule: <strong>Hi</strong>" in html
    assert "the pattern matched characters 0-9" in html
    assert "“Hi Ada”" in html
    assert not Message.objects.exists()


def test_dry_run_page_needs_the_member_role(client, tenant, make_staff_user):
    make_staff_user("watcher", tenant, Role.VIEWER)
    client.login(username="watcher", password="pw-for-tests-1")
    assert client.get("/admin/rules/rule/dry-run/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_dry_run_button_in_the_browser(page, admin_login, tenant, make_staff_user, make_rule):
    make_staff_user("editor", tenant, Role.ADMIN)
    make_rule(
        tenant, "Prices", trigger={"type": "regex", "pattern": "price", "flags": "i"}, actions=[reply("It costs 3.")]
    )
    admin_login("editor")
    page.goto("/admin/rules/rule/")
    page.get_by_role("link", name="Dry-run a message").click()
    page.get_by_label("Message").fill("What's the PRICE?")
    page.get_by_role("button", name="Dry run").click()
    assert page.locator("#dry-run-matched").text_content().split() == ["Matched", "rule:", "Prices"]
    assert "It costs 3." in page.locator("#dry-run-actions").text_content()


def test_admin_refuses_an_endpoint_of_another_tenant(client, tenant, other_tenant, api, make_endpoint, make_staff_user):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", password="pw-for-tests-1")
    client.login(username="root", password="pw-for-tests-1")
    foreign = make_endpoint(other_tenant, api)
    form = rule_form(
        tenant=str(tenant.id),
        **{"actions-0-type": "CALL_API", "actions-0-endpoint": str(foreign.id), "actions-0-template": ""},
    )
    response = client.post("/admin/rules/rule/add/", form)
    assert response.status_code == 200
    assert "Unknown endpoint." in response.content.decode()
    assert not Rule.objects.exists()


def test_branch_parent_choices_are_the_rules_branching_calls(staff, tenant, api, make_endpoint, make_rule):
    endpoint = make_endpoint(tenant, api)
    branching = {"type": "CALL_API", "endpoint": str(endpoint.id), "on_error": "branch", "branch": [reply("oops")]}
    rule = make_rule(tenant, "Branching", actions=[branching, {"type": "CALL_API", "endpoint": str(endpoint.id)}])
    other = make_rule(tenant, "Other", actions=[branching])
    page = staff.get(f"/admin/rules/rule/{rule.id}/change/")
    parent_field = page.context["inline_admin_formsets"][0].formset.forms[0].fields["parent"]
    assert {a.rule_id for a in parent_field.queryset} == {rule.id}
    assert [a.on_error for a in parent_field.queryset] == ["branch"]
    assert other.id not in {a.rule_id for a in parent_field.queryset}


def test_channel_and_trigger_labels_spell_api_and_ai_in_capitals():
    # the admin showed "Api conversation 1a2b3c4d" and the trigger type "Ai"
    assert Channel.API.label == "API" and TriggerType.AI.label == "AI"
    assert str(Conversation(channel=Channel.API)).startswith("API conversation")


def test_widget_key_page_shows_the_snippet_to_embed(staff, tenant):
    # a new key's page showed the key but not how to put the widget on a site
    key = WidgetKey.objects.create(tenant=tenant, name="Shop", allowed_origins=["https://shop.example"])
    page = staff.get(f"/admin/rules/widgetkey/{key.pk}/change/").content.decode()
    assert '&lt;script src="http://testserver/static/widget/widget.js"' in page
    assert f'data-key="{key.key}" defer&gt;&lt;/script&gt;' in page
    assert "widget-embed-snippet" not in staff.get("/admin/rules/widgetkey/add/").content.decode()
