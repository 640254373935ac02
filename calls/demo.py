"""Demo data for `make run`: an agent and a simulated trunk, so a call can be placed out of the box.

The agent gets the demo shop API's endpoints (`get_order_status`, `get_price`, created by `rules.demo`,
which runs first: `rules` comes before `calls` in INSTALLED_APPS) as its tools, so
`GET /api/v1/agents/{id}/tools` shows something out of the box.

The "Order assistant" agent talks for real (SPEC §14): a prompt, a first message, an analysis and the
same tools; its trunk's simulated caller follows a script, so with an AI provider configured
(`LLM_BASE_URL`) a call placed on that trunk shows a whole conversation — first message, tool call,
spoken result, analysis and callback. Without a provider such a call ends `Trigger Failed` with the
reason "this agent needs an AI provider", and the agent's admin page says what to set."""

from __future__ import annotations

from calls.models import ActiveStatus, Agent, SipTrunk
from integrations.models import Endpoint
from tenants import scoping
from tenants.models import Tenant

DEMO_AGENT_CODE = "payment-reminder"
DEMO_TRUNK_NAME = "Demo trunk (simulated)"
DEMO_TOOL_NAMES = ("get_order_status", "get_price")
TALKING_AGENT_CODE = "order-assistant"
SCRIPTED_TRUNK_NAME = "Demo trunk (scripted caller)"
CALLER_SCRIPT = [
    "Hi, yes, this is Ana.",
    "Yes please. Can you tell me where order 1042 is?",
    "Great, that's all I needed. Thanks, bye!",
]


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
    _load_talking_agent(tenant)


def _load_talking_agent(tenant: Tenant) -> None:
    agent, _ = Agent.objects.update_or_create(
        tenant=tenant,
        agent_code=TALKING_AGENT_CODE,
        defaults={
            "name": "Order assistant",
            "status": ActiveStatus.ACTIVE,
            "prompt": "You are Sam, the order assistant of the demo shop, calling {{customer_name}} about their "
            "recent order. Answer questions about orders and prices with your tools. Be brief and friendly.",
            "first_message": "Hello {{customer_name}}, this is Sam from the demo shop. Do you have a minute to talk "
            "about your order?",
            "end_call_message": "Thanks {{customer_name}}, have a great day. Goodbye!",
            "language": "en-US",
            "input_schema": {"fields": ["customer_name"], "sample_context": {"customer_name": "Ana Pérez"}},
            "analysis": {
                "dispositions": ["question_answered", "needs_follow_up", "not_interested", "wrong_number"],
                "extract": [
                    {"name": "order_id", "type": "string", "description": "the order the customer asked about"},
                    {"name": "satisfied", "type": "boolean", "description": "whether the customer was satisfied"},
                ],
            },
        },
    )
    agent.tools.add(*scoping.for_tenant(Endpoint, tenant).filter(tool_name__in=DEMO_TOOL_NAMES))
    SipTrunk.objects.update_or_create(
        tenant=tenant,
        name=SCRIPTED_TRUNK_NAME,
        defaults={
            "trunk_phone": "+14155552672",
            "max_cps": 2,
            "max_channels": 5,
            "status": ActiveStatus.ACTIVE,
            "dialer": "simulated",
            "dialer_config": {"ring_seconds": 1, "talk_seconds": 1, "caller": {"script": CALLER_SCRIPT}},
        },
    )
