"""Structured editors on the server side: what the page is given, and what a submitted row set stores."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from integrations.models import Connection, Endpoint
from tenants.models import Role
from tenants.widgets import StructuredJSONWidget, text

SECRET = "secret-value-1234"


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
        headers={"X-Api-Key": SECRET, "X-Other": "other-secret-99"},
    )


@pytest.fixture
def admin(client: Client, tenant, make_staff_user) -> Client:
    client.force_login(make_staff_user("olga", tenant, Role.ADMIN))
    return client


def form_data(endpoint, **fields) -> dict:
    data = {
        "connection": str(endpoint.connection_id), "name": endpoint.name, "tool_name": endpoint.tool_name,
        "description": "", "method": "GET", "path": endpoint.path, "query": json.dumps(endpoint.query),
        "headers": "", "body_type": "none", "body_template": "", "parameters": "[]", "response_mapping": "{}",
        "response_template": "", "follow_redirects": "unknown", "error_policy": "fail", "burden": "ambient",
        "cache_ttl": "0",
    }  # fmt: skip
    return {**data, **fields}


def test_the_page_gets_the_header_names_and_masked_hints_never_the_values(admin, endpoint):
    page = admin.get(f"/admin/integrations/endpoint/{endpoint.pk}/change/").content.decode()
    assert SECRET not in page and "other-secret-99" not in page
    assert "&quot;X-Api-Key&quot;: &quot;&quot;" in page  # the rows' JSON: names with blank values
    assert "••••1234 (stored)" in page
    assert "structured/editor.js" in page and "structured-json" in page


@pytest.mark.parametrize(
    ("headers", "stored"),
    [
        ('{"X-Api-Key": "", "X-Other": ""}', {"X-Api-Key": SECRET, "X-Other": "other-secret-99"}),  # unchanged rows
        ('{"X-Api-Key": ""}', {"X-Api-Key": SECRET}),  # a removed row drops that header
        ('{"X-Api-Key": "new-value", "X-Other": ""}', {"X-Api-Key": "new-value", "X-Other": "other-secret-99"}),
        ("{}", {}),  # every row removed
        ("", {"X-Api-Key": SECRET, "X-Other": "other-secret-99"}),  # an untouched box (no script) keeps all
    ],
)
def test_submitted_header_rows_merge_into_the_stored_secrets(admin, endpoint, headers, stored):
    response = admin.post(f"/admin/integrations/endpoint/{endpoint.pk}/change/", form_data(endpoint, headers=headers))
    assert response.status_code == 302, response.content.decode()[:500]
    endpoint.refresh_from_db()
    assert endpoint.headers == stored


def test_rows_that_are_not_json_are_a_form_error_and_change_nothing(admin, endpoint):
    response = admin.post(
        f"/admin/integrations/endpoint/{endpoint.pk}/change/", form_data(endpoint, query="[1,", headers="{")
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Enter a valid JSON." in body and "Enter a JSON object." in body
    endpoint.refresh_from_db()
    assert endpoint.query == {"q": "{{term}}"} and endpoint.headers["X-Api-Key"] == SECRET


def test_widget_specs_are_checked_when_declared():
    with pytest.raises(ValueError, match="two columns"):
        StructuredJSONWidget(kind="map", columns=[text("name", "Name")])
    with pytest.raises(ValueError, match="unknown kind"):
        StructuredJSONWidget(kind="table", columns=[])
    with pytest.raises(ValueError, match="sections"):
        StructuredJSONWidget(kind="object", columns=[text("name", "Name")])
