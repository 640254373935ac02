from __future__ import annotations

from integrations.models import Connection, Endpoint
from rules import demo
from rules.models import Rule, RuleAction, WidgetKey
from tenants.models import Tenant


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
    assert RuleAction.objects.filter(tenant=tenant).count() == 6
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
