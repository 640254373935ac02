"""Demo data for `make run`: an agent and a simulated trunk, so a call can be placed out of the box.

The agent gets the demo shop API's endpoints (`get_order_status`, `get_price`, created by `rules.demo`,
which runs first: `rules` comes before `calls` in INSTALLED_APPS) as its tools, so
`GET /api/v1/agents/{id}/tools` shows something out of the box."""

from __future__ import annotations

from calls.models import ActiveStatus, Agent, SipTrunk
from integrations.models import Endpoint
from tenants import scoping
from tenants.models import Tenant

DEMO_AGENT_CODE = "payment-reminder"
DEMO_TRUNK_NAME = "Demo trunk (simulated)"
DEMO_TOOL_NAMES = ("get_order_status", "get_price")


def load(tenant: Tenant) -> None:
    """Create or refresh the demo agent and trunk of `tenant` (idempotent)."""
    agent, _ = Agent.objects.update_or_create(
        tenant=tenant,
        agent_code=DEMO_AGENT_CODE,
        defaults={
            "name": "Payment reminder",
            "status": ActiveStatus.ACTIVE,
            "prompt": "You are a friendly assistant reminding {{customer_name}} that {{amount_due}} is due on "
            "{{due_date}}. Offer to take the payment or to agree on a new date.",
            "voice": "alloy",
            "language": "en-US",
            "input_schema": {
                "fields": ["customer_name", "amount_due", "due_date"],
                "sample_context": {"customer_name": "Ana Pérez", "amount_due": "120.50 USD", "due_date": "2026-07-01"},
            },
        },
    )
    # Added, not set: other tools attached to the demo agent stay attached.
    agent.tools.add(*scoping.for_tenant(Endpoint, tenant).filter(tool_name__in=DEMO_TOOL_NAMES))
    SipTrunk.objects.update_or_create(
        tenant=tenant,
        name=DEMO_TRUNK_NAME,
        defaults={
            "trunk_phone": "+14155552671",
            "max_cps": 2,
            "max_channels": 5,
            "status": ActiveStatus.ACTIVE,
            "dialer": "simulated",
            "dialer_config": {
                "ring_seconds": 2,
                "talk_seconds": 5,
                "outcome": {"completed": 8, "declined": 1, "sip_failed": 1},
            },
        },
    )
