"""REST: /api/v1/credentials, /api/v1/connections, /api/v1/endpoints — validation, masking, roles, isolation."""

from __future__ import annotations

import json

import pytest
from django.db import connection as db

from integrations.models import Connection, Credential, Endpoint
from tenants.models import AuditEvent

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def admin(clients):
    return clients["admin"]


def _create_credential(client, **body):
    body = {"name": "Weather key", "type": "bearer", "secrets": {"token": SECRET}, **body}
    return client.post("/api/v1/credentials", body, format="json")


def test_create_credential_masks_the_secret(admin, tenant):
    response = _create_credential(admin)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secrets"] == {"token": "••••cdef"}
    assert body["config"] == {}
    assert SECRET not in json.dumps(body)
    assert Credential.objects.get(pk=body["id"]).secrets == {"token": SECRET}
    assert AuditEvent.objects.filter(tenant=tenant, action="created", object_type="credential").count() == 1


def test_secrets_are_encrypted_in_the_raw_columns(admin, make_connection, make_endpoint):
    _create_credential(admin)
    endpoint = make_endpoint(make_connection(default_headers={"X-Token": SECRET}), headers={"X-Other": SECRET})

    with db.cursor() as cursor:
        cursor.execute("SELECT secrets FROM integrations_credential")
        rows = cursor.fetchall()
        cursor.execute("SELECT default_headers FROM integrations_connection")
        rows += cursor.fetchall()
        cursor.execute("SELECT headers FROM integrations_endpoint WHERE connection_id IS NOT NULL")
        rows += cursor.fetchall()
    assert len(rows) == 3
    for (raw,) in rows:
        text = raw if isinstance(raw, str) else bytes(raw).decode()
        assert SECRET not in text and "cdef" not in text
        assert text.startswith("gAAAA")
    assert endpoint.headers == {"X-Other": SECRET}


def test_blank_secret_on_update_keeps_the_old_value(admin):
    credential_id = _create_credential(admin).json()["id"]

    response = admin.patch(
        f"/api/v1/credentials/{credential_id}", {"secrets": {"token": ""}, "name": "Renamed"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert Credential.objects.get(pk=credential_id).secrets == {"token": SECRET}
    response = admin.patch(f"/api/v1/credentials/{credential_id}", {"secrets": {"token": "new-token"}}, format="json")
    assert Credential.objects.get(pk=credential_id).secrets == {"token": "new-token"}


def test_blank_secret_keeps_old_value_per_key_in_a_nested_map(admin):
    body = {"type": "query_params", "secrets": {"params": {"app_id": "id-123456789012", "app_key": "key-123456789012"}}}
    credential_id = _create_credential(admin, **body).json()["id"]

    admin.patch(
        f"/api/v1/credentials/{credential_id}",
        {"secrets": {"params": {"app_id": "", "app_key": "changed"}}},
        format="json",
    )

    assert Credential.objects.get(pk=credential_id).secrets == {
        "params": {"app_id": "id-123456789012", "app_key": "changed"}
    }


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"type": "bearer", "secrets": {}}, "secrets", {"token": ["This field is required."]}),
        (
            {"type": "api_key", "config": {"placement": "body"}, "secrets": {"key": "k"}},
            "config",
            {"placement": ["Must be one of: header, query."]},
        ),
        (
            {"type": "api_key", "config": {"header_name": "Bad Header"}, "secrets": {"key": "k"}},
            "config",
            {"header_name": ["Not a valid HTTP header name."]},
        ),
        ({"type": "basic", "secrets": {"password": "p"}}, "config", {"username": ["This field is required."]}),
        (
            {"type": "bearer", "secrets": {"token": "t", "extra": "x"}},
            "secrets",
            {"extra": ["Unknown field for this type."]},
        ),
        (
            {"type": "query_params", "secrets": {"params": "a=b"}},
            "secrets",
            {"params": ["Expected an object of names to values."]},
        ),
        ({"type": "oauth9", "secrets": {}}, "type", ['"oauth9" is not a valid choice.']),
    ],
)
def test_credential_validation_is_a_clear_400(admin, body, field, message):
    response = _create_credential(admin, **body)

    assert response.status_code == 400
    assert response.json()["details"][field] == message


def test_unknown_fields_are_rejected(admin):
    response = _create_credential(admin, colour="blue")

    assert response.status_code == 400
    assert response.json()["details"] == {"colour": ["Unknown field."]}


def test_connection_crud_with_masked_default_headers_and_retry(admin, http_server):
    credential_id = _create_credential(admin).json()["id"]
    body = {
        "name": "Weather",
        "base_url": http_server.base_url,
        "credential": credential_id,
        "default_headers": {"X-Tenant-Key": SECRET, "Accept": "application/json"},
        "retry": {"max_retries": 4, "retry_statuses": [429, 503]},
    }

    response = admin.post("/api/v1/connections", body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["default_headers"] == {"X-Tenant-Key": "••••cdef", "Accept": "••••json"}
    assert data["retry"] == {
        "max_retries": 4, "base_delay": 0.5, "max_delay": 10.0, "retry_statuses": [429, 503],
        "retry_on_connection_errors": True,
    }  # fmt: skip
    assert data["connect_timeout"] == 3.0 and data["read_timeout"] == 5.0 and data["verify_tls"] is True
    assert data["max_response_bytes"] == 5 * 1024 * 1024
    patched = admin.patch(
        f"/api/v1/connections/{data['id']}",
        {"default_headers": {"X-Tenant-Key": "", "Accept": "text/plain"}},
        format="json",
    )
    assert patched.status_code == 200
    assert Connection.objects.get(pk=data["id"]).default_headers == {"X-Tenant-Key": SECRET, "Accept": "text/plain"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_url": "ftp://example.com"}, "base_url"),
        ({"base_url": "http://user:pw@example.com"}, "base_url"),
        ({"default_headers": {"X-A": "{{#if x}}"}}, "default_headers"),
        ({"default_headers": {"Bad Name": "v"}}, "default_headers"),
        ({"retry": {"max_retries": 99}}, "retry"),
        ({"connect_timeout": 0}, "connect_timeout"),
    ],
)
def test_connection_validation(admin, body, field):
    response = admin.post(
        "/api/v1/connections", {"name": "C", "base_url": "https://api.example.com", **body}, format="json"
    )

    assert response.status_code == 400
    assert field in response.json()["details"]


def test_a_blocked_literal_address_is_refused_at_save(admin, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False

    response = admin.post(
        "/api/v1/connections", {"name": "C", "base_url": "http://169.254.169.254/latest"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["details"]["base_url"] == [
        "Destination not allowed: 169.254.169.254 is a link-local address."
    ]


def _create_endpoint(client, connection_id, **body):
    body = {
        "connection": str(connection_id),
        "name": "Weather",
        "tool_name": "get_weather",
        "path": "/w/{city}",
        **body,
    }
    return client.post("/api/v1/endpoints", body, format="json")


def test_endpoint_with_every_field(admin, make_connection):
    connection = make_connection()
    body = {
        "description": "Current weather for a city",
        "method": "POST",
        "query": {"units": "{{units}}"},
        "headers": {"X-Key": SECRET},
        "body_type": "json",
        "body_template": '{"city": "{city}"}',
        "parameters": [
            {
                "name": "city",
                "location": "path",
                "type": "string",
                "required": True,
                "description": "City",
                "example": "Lima",
            },
            {
                "name": "units",
                "location": "query",
                "type": "string",
                "enum": ["metric", "imperial"],
                "default": "metric",
            },
        ],
        "response_mapping": {"temp": "data.temp"},
        "response_template": "It is {{temp}} degrees",
        "include_raw": True,
        "connect_timeout": 1.5,
        "read_timeout": 2,
        "follow_redirects": True,
        "error_policy": "branch",
        "burden": "confirmed",
        "cache_ttl": 30,
    }

    response = _create_endpoint(admin, connection.pk, **body)

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["headers"] == {"X-Key": "••••cdef"}
    assert data["parameters"][0] == {
        "name": "city", "location": "path", "type": "string", "description": "City", "required": True,
        "default": None, "enum": None, "example": "Lima",
    }  # fmt: skip
    for key in ("burden", "error_policy", "cache_ttl", "include_raw", "response_template", "follow_redirects"):
        assert data[key] == body[key]
    assert Endpoint.objects.get(pk=data["id"]).headers == {"X-Key": SECRET}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"path": "/w/{{#if city}}"}, "path"),
        ({"query": {"q": "{{/each}}"}}, "query"),
        ({"headers": {"X-A": "{{#each}}"}}, "headers"),
        ({"body_type": "json", "body_template": "{{#with}}"}, "body_template"),
        ({"body_type": "form", "body_template": "not json"}, "body_template"),
        ({"response_template": "{{#if}}"}, "response_template"),
        ({"parameters": [{"name": "x", "type": "date"}]}, "parameters"),
        ({"parameters": [{"name": "1x"}]}, "parameters"),
        ({"parameters": [{"name": "x", "type": "integer", "default": "abc"}]}, "parameters"),
        ({"parameters": [{"name": "zip", "location": "path"}]}, "parameters"),
        ({"response_mapping": {"a": "data[?"}}, "response_mapping"),
        ({"response_mapping": {"a": "[" * 3000}}, "response_mapping"),  # jmespath's RecursionError was a 500
        ({"method": "TRACE"}, "method"),
        ({"burden": "whenever"}, "burden"),
        ({"error_policy": "ignore"}, "error_policy"),
        ({"tool_name": "not a slug"}, "tool_name"),
    ],
)
def test_endpoint_validation_names_the_field(admin, make_connection, body, field):
    response = _create_endpoint(admin, make_connection().pk, **body)

    assert response.status_code == 400, response.json()
    assert field in response.json()["details"], response.json()


def test_tool_name_is_unique_per_tenant(admin, make_connection, other_client, other_tenant, make_endpoint):
    connection = make_connection()
    assert _create_endpoint(admin, connection.pk).status_code == 201

    duplicate = _create_endpoint(admin, connection.pk)
    other_connection = make_connection(owner=other_tenant)
    elsewhere = _create_endpoint(other_client, other_connection.pk)

    assert duplicate.status_code == 400
    assert duplicate.json()["details"] == {"tool_name": ["An endpoint with this tool name already exists."]}
    assert elsewhere.status_code == 201


def test_cannot_reference_another_tenants_connection_or_credential(
    admin, make_connection, make_credential, other_tenant
):
    foreign_connection = make_connection(owner=other_tenant)
    foreign_credential = make_credential("none", owner=other_tenant)

    endpoint = _create_endpoint(admin, foreign_connection.pk)
    connection = admin.post(
        "/api/v1/connections",
        {"name": "C", "base_url": "https://api.example.com", "credential": str(foreign_credential.pk)},
        format="json",
    )

    assert endpoint.status_code == 400
    assert "does not exist" in endpoint.json()["details"]["connection"][0]
    assert connection.status_code == 400
    assert "does not exist" in connection.json()["details"]["credential"][0]


@pytest.mark.parametrize("kind", ["credentials", "connections", "endpoints"])
def test_other_tenants_objects_are_404(kind, other_client, owner_client, make_credential, make_endpoint):
    endpoint = make_endpoint()
    objects = {"credentials": make_credential("none"), "connections": endpoint.connection, "endpoints": endpoint}
    url = f"/api/v1/{kind}/{objects[kind].pk}"

    assert other_client.get(url).status_code == 404
    assert other_client.patch(url, {"name": "x"}, format="json").status_code == 404
    assert other_client.delete(url).status_code == 404
    assert other_client.get(f"/api/v1/{kind}").json()["count"] == 0
    if kind != "credentials":
        assert other_client.post(f"{url}/test", {}, format="json").status_code == 404
    assert owner_client.get(url).status_code == 200


@pytest.mark.parametrize("kind", ["credentials", "connections", "endpoints"])
def test_roles(kind, clients, make_endpoint, make_credential):
    endpoint = make_endpoint()
    objects = {"credentials": make_credential("none"), "connections": endpoint.connection, "endpoints": endpoint}
    url = f"/api/v1/{kind}/{objects[kind].pk}"

    assert clients["viewer"].get(url).status_code == 200
    denied = clients["viewer"].patch(url, {"name": "x"}, format="json")
    assert denied.status_code == 403
    assert denied.json() == {"error": "This action requires the admin role"}
    assert clients["member"].patch(url, {"name": "x"}, format="json").status_code == 403
    assert clients["member"].delete(url).status_code == 403
    assert clients["admin"].patch(url, {"name": "renamed"}, format="json").status_code == 200


def test_a_credential_in_use_cannot_be_deleted(admin, make_connection, make_credential):
    credential = make_credential("none")
    make_connection(credential=credential, name="Billing")

    response = admin.delete(f"/api/v1/credentials/{credential.pk}")

    assert response.status_code == 409
    assert response.json() == {"error": "This credential is used by connections: Billing"}


@pytest.mark.parametrize("kind", ["endpoints", "connections"])
def test_an_endpoint_a_rule_calls_cannot_be_deleted(kind, admin, make_endpoint):
    # given a rule whose CALL_API action uses the endpoint (RuleAction.endpoint is PROTECT)
    endpoint = make_endpoint()
    rule = admin.post(
        "/api/v1/rules",
        {
            "name": "Order status",
            "trigger": {"type": "always"},
            "actions": [{"type": "CALL_API", "endpoint": str(endpoint.pk)}],
        },
        format="json",
    )
    assert rule.status_code == 201, rule.json()
    target = endpoint if kind == "endpoints" else endpoint.connection
    events = AuditEvent.objects.count()

    # when deleting it (or its connection, whose endpoints go with it)
    response = admin.delete(f"/api/v1/{kind}/{target.pk}")

    # then 409 naming the rule (was a 500), nothing deleted and no audit event
    noun = "endpoint" if kind == "endpoints" else "connection"
    assert response.status_code == 409
    assert response.json() == {"error": f"This {noun} is used by rules: Order status"}
    assert Endpoint.objects.filter(pk=endpoint.pk).exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("credentials", {"name": "x", "type": "bearer", "secrets": []}),
        ("credentials", {"name": "x", "type": "bearer", "secrets": {"token": 5}}),
        ("credentials", {"name": "x", "type": "query_params", "secrets": {"params": {"a": {"b": 1}}}}),
        ("credentials", {"name": "x", "type": "api_key", "config": [], "secrets": {"key": "k"}}),
        ("credentials", {"name": "x", "type": "api_key", "config": None, "secrets": {"key": "k"}}),
        ("credentials", {"name": ["x"], "type": 3}),
        ("connections", {"name": "x", "base_url": "https://a.example", "retry": None}),
        ("connections", {"name": "x", "base_url": "https://a.example", "retry": {"max_delay": "soon"}}),
        ("connections", {"name": "x", "base_url": "https://a.example", "default_headers": "X-A: 1"}),
        ("connections", {"name": "x", "base_url": "https://a.example", "max_response_bytes": 10**12}),
        ("endpoints", {"name": "x", "tool_name": "x", "query": "a=b"}),
        ("endpoints", {"name": "x", "tool_name": "x", "parameters": {"name": "a"}}),
        ("endpoints", {"name": "x", "tool_name": "x", "parameters": [None, 3]}),
        ("endpoints", {"name": "x", "tool_name": "x", "response_mapping": ["a"]}),
        ("endpoints", {"name": "x", "tool_name": "x", "response_mapping": {"a": 3}}),
        (
            "endpoints",
            {"name": "x", "tool_name": "x", "body_type": "multipart", "body_template": '{"files": {"f": 3}}'},
        ),
        ("endpoints", {"name": "x", "tool_name": "x", "headers": {"X-A": 3}}),
        ("endpoints", {"name": "x", "tool_name": "x", "connect_timeout": 10**9}),
    ],
)
def test_malformed_writes_are_400_never_500(admin, make_connection, path, body):
    if path == "endpoints":
        body = {"connection": str(make_connection().pk), **body}

    response = admin.post(f"/api/v1/{path}", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]


def test_changing_the_type_drops_old_secrets_and_state(admin):
    credential_id = _create_credential(admin).json()["id"]
    credential = Credential.objects.get(pk=credential_id)
    credential.state = {"access_token": "old"}
    credential.save()

    response = admin.patch(
        f"/api/v1/credentials/{credential_id}",
        {"type": "basic", "config": {"username": "ada"}, "secrets": {"password": "pw"}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    credential.refresh_from_db()
    assert credential.secrets == {"password": "pw"} and credential.state == {}
