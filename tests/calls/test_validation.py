"""calls.validation is the one set of save-time checks: the admin forms and the API say the same."""

from __future__ import annotations

import pytest
from django.test import Client

from calls.models import Agent, SipTrunk

TRUNK = {"name": "Carrier", "max_cps": 1, "max_channels": 1, "status": "active", "dialer": "simulated"}


@pytest.fixture
def admin_browser(tenant, make_staff_user) -> Client:
    client = Client()
    client.force_login(make_staff_user("ops", tenant, role="admin"))
    return client


def test_a_bad_caller_id_reads_the_same_in_the_admin_and_the_api(admin_browser, clients):
    message = "trunk_phone must be in E.164 format, e.g. +14155552671"

    page = admin_browser.post("/admin/calls/siptrunk/add/", {**TRUNK, "trunk_phone": "12345", "dialer_config": "{}"})
    api = clients["admin"].post("/api/v1/sip-trunks", {**TRUNK, "trunk_phone": "12345"}, format="json")

    assert message in page.content.decode()
    assert api.json()["details"] == {"trunk_phone": [message]}
    assert not SipTrunk.objects.exists()


def test_a_bad_dialer_config_is_reported_on_its_field_in_both(admin_browser, clients):
    config = {"ring_seconds": -1}

    page = admin_browser.post(
        "/admin/calls/siptrunk/add/", {**TRUNK, "trunk_phone": "+14155552671", "dialer_config": '{"ring_seconds": -1}'}
    )
    api = clients["admin"].post(
        "/api/v1/sip-trunks", {**TRUNK, "trunk_phone": "+14155552671", "dialer_config": config}, format="json"
    )

    assert page.context["adminform"].form.errors["dialer_config"] == ["ring_seconds must be between 0 and 300"]
    assert api.json()["details"] == {"dialer_config": ["ring_seconds must be between 0 and 300"]}


def test_an_agents_input_schema_is_checked_alike(admin_browser, clients):
    schema = '{"fields": ["a", "a"]}'
    agent = {"name": "A", "agent_code": "a", "status": "active", "prompt": "p", "voice": "v", "language": "en"}

    page = admin_browser.post("/admin/calls/agent/add/", {**agent, "input_schema": schema})
    api = clients["admin"].post("/api/v1/agents", {**agent, "input_schema": {"fields": ["a", "a"]}}, format="json")

    assert page.context["adminform"].form.errors["input_schema"] == ["input_schema.fields must not repeat a name"]
    assert api.json()["details"] == {"input_schema": ["input_schema.fields must not repeat a name"]}
    assert not Agent.objects.exists()
