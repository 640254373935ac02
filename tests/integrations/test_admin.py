"""The admin: write-only secrets, connections with endpoints inline, the test pages, the call log."""

from __future__ import annotations

import json

import pytest

from integrations.executor import execute
from integrations.models import ApiCallLog, Connection, Credential
from tenants.models import Membership, Role

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def staff(client, make_staff_user, tenant):
    def login(role: str = "admin"):
        user = make_staff_user(f"{role}-user", tenant, role=role)
        client.force_login(user)
        return client

    return login


def test_credential_form_never_shows_the_secret_and_blank_keeps_it(staff, make_credential):
    client = staff("admin")
    credential = make_credential("bearer", secrets={"token": SECRET}, name="Billing token")
    url = f"/admin/integrations/credential/{credential.pk}/change/"

    page = client.get(url)
    response = client.post(
        url, {"name": "Billing token 2", "type": "bearer", "config": "{}", "secrets": "", "description": ""}
    )

    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    assert "••••cdef" in page.content.decode()
    assert response.status_code == 302, response.content.decode()[:2000]
    credential.refresh_from_db()
    assert credential.name == "Billing token 2"
    assert credential.secrets == {"token": SECRET}


def test_credential_form_validates_the_type(staff):
    client = staff("admin")

    response = client.post(
        "/admin/integrations/credential/add/",
        {
            "name": "K",
            "type": "api_key",
            "config": '{"placement": "body"}',
            "secrets": '{"key": "k"}',
            "description": "",
        },
    )

    assert response.status_code == 200
    assert "placement: Must be one of: header, query." in response.content.decode()
    assert not Credential.objects.exists()


def _connection_with_endpoint_form(base_url: str, **overrides) -> dict:
    data = {
        "name": "Weather",
        "base_url": base_url,
        "credential": "",
        "default_headers": json.dumps({"X-Key": SECRET}),
        "connect_timeout": "3",
        "read_timeout": "5",
        "total_deadline": "30",
        "retry": json.dumps({"max_retries": 1}),
        "verify_tls": "on",
        "max_response_bytes": "1000",
        "description": "",
        "endpoints-TOTAL_FORMS": "1",
        "endpoints-INITIAL_FORMS": "0",
        "endpoints-0-name": "Now",
        "endpoints-0-tool_name": "weather_now",
        "endpoints-0-description": "",
        "endpoints-0-method": "GET",
        "endpoints-0-path": "/echo/{city}",
        "endpoints-0-query": "{}",
        "endpoints-0-headers": "",
        "endpoints-0-body_type": "none",
        "endpoints-0-body_template": "",
        "endpoints-0-parameters": json.dumps([{"name": "city", "location": "path", "required": True}]),
        "endpoints-0-response_mapping": "{}",
        "endpoints-0-response_template": "",
        "endpoints-0-follow_redirects": "unknown",
        "endpoints-0-error_policy": "continue",
        "endpoints-0-burden": "conversational",
        "endpoints-0-cache_ttl": "0",
    }

    data.update(overrides)
    return data


def test_connection_with_inline_endpoint(staff, tenant, http_server):
    client = staff("admin")
    data = _connection_with_endpoint_form(http_server.base_url)

    response = client.post("/admin/integrations/connection/add/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    connection = Connection.objects.get()
    assert connection.tenant == tenant
    assert connection.default_headers == {"X-Key": SECRET}
    endpoint = connection.endpoints.get()
    assert endpoint.tenant == tenant and endpoint.parameters[0]["type"] == "string"
    page = client.get(f"/admin/integrations/connection/{connection.pk}/change/").content.decode()
    assert SECRET not in page and "Weather" in page


def test_endpoint_test_page(staff, make_credential, make_connection, make_endpoint, http_server):
    client = staff("member")
    credential = make_credential("bearer", secrets={"token": SECRET})
    endpoint = make_endpoint(make_connection(credential=credential), query={"city": "{city}"})
    url = f"/admin/integrations/endpoint/{endpoint.pk}/test/"

    form = client.get(url)
    result = client.post(url, {"params": '{"city": "Lima"}', "variables": "{}"})

    assert form.status_code == 200 and 'name="params"' in form.content.decode()
    html = result.content.decode()
    assert result.status_code == 200
    assert "success — HTTP 200" in html
    assert "city=Lima" in html
    assert SECRET not in html
    assert http_server.last.query == {"city": "Lima"}


def test_endpoint_test_page_names_the_declared_parameters(staff, make_connection, make_endpoint, http_server):
    # the params box was blank with only "JSON object" under it: a first test had to guess the names
    endpoint = make_endpoint(
        make_connection(),
        path="/orders/{orderId}",
        parameters=[{"name": "orderId", "location": "path", "type": "string", "required": True}],
    )
    html = staff("member").get(f"/admin/integrations/endpoint/{endpoint.pk}/test/").content.decode()
    assert 'placeholder="{&quot;orderId&quot;: &quot;…&quot;}"' in html
    assert "the endpoint's parameters: orderId" in html


def test_connection_test_page(staff, make_connection, http_server):
    client = staff("member")
    http_server.route("GET", "/", lambda request: (200, {}, "hi"))
    connection = make_connection()

    html = client.post(f"/admin/integrations/connection/{connection.pk}/test/").content.decode()

    assert "OK —" in html


def test_test_pages_are_scoped(staff, make_connection, make_endpoint, other_tenant, http_server):
    client = staff("member")
    foreign = make_endpoint(make_connection(owner=other_tenant))

    assert client.get(f"/admin/integrations/endpoint/{foreign.pk}/test/").status_code == 404
    assert client.post(f"/admin/integrations/connection/{foreign.connection.pk}/test/").status_code == 404
    assert client.get("/admin/integrations/endpoint/not-a-uuid/test/").status_code == 404
    assert http_server.count() == 0


def test_viewer_cannot_run_tests(staff, make_endpoint, http_server):
    client = staff("viewer")
    endpoint = make_endpoint()

    assert client.post(f"/admin/integrations/endpoint/{endpoint.pk}/test/", {"params": "{}"}).status_code == 404
    assert http_server.count() == 0


def test_api_call_log_list_and_filters(staff, make_endpoint, http_server):
    client = staff("viewer")
    endpoint = make_endpoint()
    execute(endpoint, trigger="rule")
    execute(make_endpoint(path="/status/500", tool_name="broken", name="Broken"), trigger="tool")

    listing = client.get("/admin/integrations/apicalllog/")
    errors_only = client.get("/admin/integrations/apicalllog/?status__exact=error")

    assert listing.status_code == 200
    assert "Echo" in listing.content.decode() and "Broken" in listing.content.decode()
    assert "Broken" in errors_only.content.decode() and ">Echo<" not in errors_only.content.decode()
    assert client.get("/admin/integrations/apicalllog/?trigger__exact=rule").status_code == 200
    assert client.get("/admin/integrations/apicalllog/add/").status_code == 403


def test_api_call_logs_and_filters_are_scoped_to_the_tenant(staff, other_tenant, make_connection, make_endpoint):
    foreign = make_endpoint(make_connection(owner=other_tenant, name="Foreign API"), name="Foreign call")
    execute(foreign)
    execute(make_endpoint(name="Own call"))
    client = staff("admin")

    logs = client.get("/admin/integrations/apicalllog/").content.decode()
    endpoints = client.get("/admin/integrations/endpoint/").content.decode()

    assert "Own call" in logs and "Foreign call" not in logs
    assert "Foreign API" not in endpoints and "Foreign call" not in endpoints
    foreign_log = ApiCallLog.objects.get(endpoint=foreign)
    assert client.get(f"/admin/integrations/apicalllog/{foreign_log.pk}/change/").status_code == 302


def test_a_connection_cannot_use_another_tenants_credential(
    client, tenant, other_tenant, make_credential, django_user_model
):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests-1"))
    foreign = make_credential("none", owner=other_tenant)
    data = {
        "tenant": str(tenant.pk), "name": "C", "base_url": "https://api.example.com", "credential": str(foreign.pk),
        "default_headers": "", "connect_timeout": "3", "read_timeout": "5", "total_deadline": "30", "retry": "{}",
        "max_response_bytes": "1000", "description": "", "endpoints-TOTAL_FORMS": "0", "endpoints-INITIAL_FORMS": "0",
    }  # fmt: skip

    response = client.post("/admin/integrations/connection/add/", data)

    assert response.status_code == 200
    assert "Choose a credential of the same organisation." in response.content.decode()
    assert not Connection.objects.exists()


def test_a_standalone_endpoint_takes_its_connections_tenant(staff, tenant, make_connection):
    client = staff("admin")
    connection = make_connection()
    data = {
        "connection": str(connection.pk), "name": "N", "tool_name": "n", "description": "", "method": "GET",
        "path": "/x", "query": "{}", "headers": "", "body_type": "none", "body_template": "", "parameters": "[]",
        "response_mapping": "{}", "response_template": "", "follow_redirects": "unknown", "error_policy": "fail",
        "burden": "ambient", "cache_ttl": "0",
    }  # fmt: skip

    response = client.post("/admin/integrations/endpoint/add/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert connection.endpoints.get().tenant == tenant


def test_duplicate_names_are_form_errors_not_crashes(staff, make_credential, make_endpoint):
    client = staff("admin")
    make_credential("none", name="Taken")
    make_endpoint(tool_name="taken_tool")

    credential = client.post(
        "/admin/integrations/credential/add/",
        {"name": "Taken", "type": "none", "config": "{}", "secrets": "", "description": ""},
    )

    assert credential.status_code == 200
    assert "A credential with this name already exists." in credential.content.decode()


def test_duplicates_are_form_errors_for_a_user_of_two_tenants(
    client, tenant, other_tenant, make_staff_user, make_credential, make_endpoint, http_server
):
    """The tenant field is shown, and a new connection's inline endpoints have no tenant of their own:
    "unique within the tenant" is judged against the chosen tenant, in the API's words."""
    user = make_staff_user("two-tenants", tenant)
    Membership.objects.create(tenant=other_tenant, user=user, role=Role.ADMIN)
    client.force_login(user)
    make_credential("none", name="Taken")
    make_endpoint(tool_name="weather_now")

    credential = client.post(
        "/admin/integrations/credential/add/",
        {"tenant": str(tenant.pk), "name": "Taken", "type": "none", "config": "{}", "secrets": "", "description": ""},
    )
    connection = client.post(
        "/admin/integrations/connection/add/",
        _connection_with_endpoint_form(http_server.base_url, tenant=str(tenant.pk)),
    )
    elsewhere = client.post(
        "/admin/integrations/connection/add/",
        _connection_with_endpoint_form(http_server.base_url, tenant=str(other_tenant.pk)),
    )

    assert credential.status_code == 200
    assert "A credential with this name already exists." in credential.content.decode()
    assert connection.status_code == 200
    assert "An endpoint with this tool name already exists." in connection.content.decode()
    assert elsewhere.status_code == 302, elsewhere.content.decode()[:2000]
    assert Credential.objects.filter(name="Taken").count() == 1
    assert Connection.objects.filter(name="Weather").get().tenant == other_tenant
