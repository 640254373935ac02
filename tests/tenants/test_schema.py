"""The OpenAPI schema and the offline docs page (SPEC §13)."""

from __future__ import annotations

import re

from django.core.management import call_command


def test_spectacular_validates_without_warnings(tmp_path):
    # `manage.py spectacular --validate --fail-on-warn` exits non-zero on any warning or error.
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "openapi: 3.0.3" in text and "/api/v1/api-keys:" in text and "/api/v1/tenant/webhook-secret:" in text


def test_schema_is_served_without_credentials_and_describes_bearer_auth(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Switchboard API"
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "swb_…",
        "description": "A tenant API key: `Authorization: Bearer swb_…`.",
    }
    # paths are documented as clients write them: no trailing slash
    assert {"/api/v1/api-keys", "/api/v1/api-keys/{id}", "/api/v1/tenant/webhook-secret"} <= set(schema["paths"])
    assert not [path for path in schema["paths"] if path.startswith("/api/v1/") and path.endswith("/")]
    assert sorted(schema["paths"]["/api/v1/api-keys/{id}"]) == ["delete", "get", "patch"]
    created = schema["paths"]["/api/v1/api-keys"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ApiKeyCreated"}


def test_docs_page_uses_only_local_assets(client, db):
    # given the docs page
    response = client.get("/api/docs/")
    html = response.content.decode()
    # then every script and stylesheet is served by this app (no CDN), and the assets exist
    assert response.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    assert all(src.startswith("/") for src in sources), sources
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in sources
    for src in sources:
        asset = client.get(src)
        assert asset.status_code == 200, src


def test_request_bodies_of_strict_serializers_refuse_unknown_fields(client, db):
    # StrictModelSerializer/StrictSerializer answer 400 to an unknown field: the schema says so
    schemas = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["components"]["schemas"]
    assert schemas["ApiKeyRequest"]["additionalProperties"] is False
    assert schemas["PatchedRuleRequest"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["ApiKey"]  # responses are not constrained


def test_the_call_request_body_is_documented(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    post = schema["paths"]["/integration/v1/calls"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PlaceCallRequest"
    }
    body = schema["components"]["schemas"]["PlaceCallRequest"]
    assert body["required"] == ["agent_id", "phone_number", "sip_trunk_id"]
    assert body["additionalProperties"] is False
