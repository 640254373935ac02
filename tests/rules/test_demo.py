from __future__ import annotations

from integrations.models import Connection, Endpoint
from rules import demo
from rules.models import Rule, RuleAction, WidgetKey
from tenants.models import Tenant
from tenants.services import create_api_key
from tests.support.api import bearer_client


def test_demo_load_is_idempotent(db, monkeypatch):
    monkeypatch.setenv("WEB_PORT", "8123")
    tenant = Tenant.objects.create(name="Demo Co", slug="demo")
    demo.load(tenant)
    key = WidgetKey.objects.get(tenant=tenant)
    demo.load(tenant)

    assert Connection.objects.get(tenant=tenant).base_url == "http://127.0.0.1:8123/demo-api"
    assert Endpoint.objects.filter(tenant=tenant).count() == 2
    assert list(Rule.objects.filter(tenant=tenant).values_list("name", "trigger_type")) == [
        ("Order status", "regex"),
        ("Real-time pricing", "regex"),
        ("Fallback", "always"),
    ]
    assert RuleAction.objects.filter(tenant=tenant).count() == 7
    assert WidgetKey.objects.get(tenant=tenant).key == key.key
    assert key.allowed_origins == ["http://127.0.0.1:8123", "http://localhost:8123"]


def test_demo_api_answers_realistic_json(client, db):
    order = client.get("/demo-api/orders/12345").json()["data"]
    assert set(order) == {"id", "status", "eta", "carrier", "items"}
    assert client.get("/demo-api/orders/12345").json() == {"data": order}
    assert client.get("/demo-api/orders/abc").status_code == 404
    price = client.get("/demo-api/prices/widget-42").json()["data"]
    assert price["price"] == {"amount": 49.9, "currency": "EUR"}
    assert client.get("/demo-api/prices/NOPE").status_code == 404


def test_demo_page_without_a_demo_tenant_is_a_404(client, db):
    assert client.get("/widget/demo/").status_code == 404


def test_demo_pricing_uses_a_sku_named_in_the_message_else_the_pages(db, monkeypatch):
    # "What is the price of ABC-123?" on the WIDGET-42 page answered WIDGET-42's price
    monkeypatch.setenv("WEB_PORT", "8123")
    tenant = Tenant.objects.create(name="Demo Co", slug="demo")
    demo.load(tenant)
    client = bearer_client(create_api_key(tenant, name="t", role="member")[1])

    def priced_url(message: str) -> str:
        body = {"message": message, "variables": {"product_sku": "WIDGET-42"}}
        actions = client.post("/api/v1/rules/dry-run", body, format="json").json()["actions"]
        return actions[0]["request"]["url"]

    assert priced_url("What is the price of ABC-123?") == "http://127.0.0.1:8123/demo-api/prices/ABC-123"
    assert priced_url("how much is gadget-7 please") == "http://127.0.0.1:8123/demo-api/prices/gadget-7"
    assert priced_url("How much does this cost?") == "http://127.0.0.1:8123/demo-api/prices/WIDGET-42"
