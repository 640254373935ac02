"""The demo tenant's rules: the two recipes of the product docs, a fallback, and a widget key.

The demo API they call is served by this same project (`rules.demo_views`, `/demo-api/...`), so the
connection points at `http://127.0.0.1:<WEB_PORT>/demo-api`; `make run` allows that host for outgoing
calls (OUTBOUND_ALLOWED_HOSTS=127.0.0.1). Idempotent: every object is found by name and updated.
"""

from __future__ import annotations

import os

from integrations.models import Connection, Endpoint
from rules.definitions import parse_actions, parse_trigger, save_rule
from rules.demo_views import DEMO_KEY_NAME
from rules.models import Rule, WidgetKey
from tenants import scoping

CONNECTION_NAME = "Demo shop API"


def load(tenant) -> None:
    port = os.environ.get("WEB_PORT", "8000")
    orders, prices = _endpoints(tenant, port)
    _rules(tenant, orders, prices)
    _widget_key(tenant, port)


def _endpoints(tenant, port: str) -> tuple[Endpoint, Endpoint]:
    """The demo shop's connection and its two endpoints: order status and current price."""
    connection, _ = Connection.objects.update_or_create(
        tenant=tenant,
        name=CONNECTION_NAME,
        defaults={
            "base_url": f"http://127.0.0.1:{port}/demo-api",
            "description": "A small shop API served by this project at /demo-api/ (orders and prices).",
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
        },
    )
    orders = _endpoint(
        tenant,
        connection,
        tool_name="get_order_status",
        name="Order status",
        description="The status and delivery date of an order.",
        path="/orders/{orderId}",
        parameters=[{"name": "orderId", "location": "path", "type": "string", "required": True}],
        response_mapping={"order_status": "data.status", "delivery_eta": "data.eta"},
        response_template="Order {{orderId}} is {{order_status}}; expected delivery {{delivery_eta}}.",
        say_on_start="Let me look up that order.",
        say_on_failure="Sorry, I couldn't find order {{orderId}}.",
    )
    prices = _endpoint(
        tenant,
        connection,
        tool_name="get_price",
        name="Current price",
        description="The current price of a product by SKU.",
        path="/prices/{sku}",
        parameters=[{"name": "sku", "location": "path", "type": "string", "required": True}],
        response_mapping={"current_price": "data.price.amount", "price_currency": "data.price.currency"},
        response_template="The current price is {{current_price}} {{price_currency}}.",
        say_on_failure="Sorry, I can't look up that price right now.",
    )
    return orders, prices


def _rules(tenant, orders: Endpoint, prices: Endpoint) -> None:
    """The two recipes of the product docs (order status, real-time pricing) and a fallback."""
    _rule(
        tenant,
        name="Order status",
        priority=10,
        trigger={"type": "regex", "pattern": r"order #?(?P<orderId>\d+)", "flags": "i"},
        actions=[
            {
                "type": "CALL_API",
                "endpoint": str(orders.id),
                "params": {"orderId": "{orderId}"},
                "on_error": "branch",
                "branch": [
                    {"type": "REPLY_TEXT", "template": "I couldn't find order {orderId}. Please check the number."}
                ],
            },
            {"type": "REPLY_TEXT", "template": "Order {orderId} is {order_status}; expected delivery {delivery_eta}."},
        ],
    )
    _rule(
        tenant,
        name="Real-time pricing",
        priority=20,
        # The product of the page (the widget's `product_sku` variable), unless the message names a SKU.
        trigger={
            "type": "regex",
            "pattern": r"\b(price|cost|how much)\b(?:.*?\b(?P<product_sku>[a-z]+-\d+)\b)?",
            "flags": "i",
        },
        actions=[
            {
                "type": "CALL_API",
                "endpoint": str(prices.id),
                "params": {"sku": "{product_sku}"},
                "on_error": "branch",
                "branch": [{"type": "REPLY_TEXT", "template": "I couldn't find a price for {product_sku}."}],
            },
            {"type": "REPLY_TEXT", "template": "The current price is {current_price} {price_currency}."},
        ],
        fallback_text="Sorry, I can't look up the price right now.",
    )
    _rule(
        tenant,
        name="Fallback",
        priority=1000,
        trigger={"type": "always"},
        actions=[
            {
                "type": "REPLY_TEXT",
                "template": "I can tell you the price of this product or the status of an order "
                "(try “where is order #12345?”).",
            }
        ],
    )


def _widget_key(tenant, port: str) -> None:
    key = scoping.for_tenant(WidgetKey, tenant).filter(name=DEMO_KEY_NAME).first() or WidgetKey(
        tenant=tenant, name=DEMO_KEY_NAME
    )
    key.allowed_origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    key.is_active = True
    key.save()


def _endpoint(tenant, connection, *, tool_name: str, **fields) -> Endpoint:
    endpoint, _ = Endpoint.objects.update_or_create(
        tenant=tenant, tool_name=tool_name, defaults={"connection": connection, "method": "GET", **fields}
    )
    return endpoint


def _rule(tenant, *, name: str, trigger: dict, actions: list[dict], **fields) -> Rule:
    rule = scoping.for_tenant(Rule, tenant).filter(name=name).first() or Rule(tenant=tenant, name=name)
    return save_rule(rule, {**parse_trigger(trigger), **fields}, parse_actions(actions, tenant))
