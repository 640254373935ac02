"""The customer API agent tests talk to: a local server that records what it got (`customer_api`) and
the tenant's connection with three endpoints over it (`customer_endpoints`), shared by the runtime and
voice suites."""

from __future__ import annotations

import pytest

from integrations.models import Burden, Connection, Endpoint


@pytest.fixture
def customer_api(make_http_server):
    """The tenant's API: /balance answers a balance, /payments records a payment; every request is recorded."""
    server = make_http_server()
    server.route("GET", "/balance", lambda r: (200, {}, {"balance": 150000, "currency": "INR"}))
    server.route("POST", "/payments", lambda r: (201, {}, {"payment_id": "P-1", "received": r.json()}))
    return server


@pytest.fixture
def customer_endpoints(tenant, customer_api) -> dict[str, Endpoint]:
    """The customer API's endpoints, by the burden each stands for: balance (conversational),
    payment (confirmed), statement (verified)."""
    connection = Connection.objects.create(
        tenant=tenant, name="Customer API", base_url=customer_api.base_url, retry={"max_retries": 0}
    )

    def endpoint(**fields) -> Endpoint:
        return Endpoint.objects.create(tenant=tenant, connection=connection, **fields)

    balance = endpoint(
        name="Balance",
        tool_name="get_balance",
        description="Look up the customer's current balance.",
        method="GET",
        path="/balance",
        query={"account": "{{account}}"},
        parameters=[{"name": "account", "location": "query", "type": "string", "required": True}],
        response_template="Your current balance is {{response.balance}} rupees.",
        say_on_start="Let me check that for you.",
        burden=Burden.CONVERSATIONAL,
    )
    payment = endpoint(
        name="Schedule payment",
        tool_name="schedule_payment",
        description="Schedule a payment",
        method="POST",
        path="/payments",
        body_type="json",
        body_template='{"amount": {{amount}}, "date": "{{date}}"}',
        parameters=[
            {"name": "amount", "location": "body", "type": "number", "required": True},
            {"name": "date", "location": "body", "type": "string", "required": True},
        ],
        response_template="Your payment of {{response.received.amount}} is scheduled.",
        burden=Burden.CONFIRMED,
    )
    statement = endpoint(
        name="Statement",
        tool_name="get_statement",
        description="Read the account statement.",
        method="GET",
        path="/balance",
        burden=Burden.VERIFIED,
    )
    return {"balance": balance, "payment": payment, "statement": statement}
