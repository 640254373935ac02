"""`manage.py demo_call`: place one call with the demo's talking agent and show it as it happens.

With `make run` running (web + worker) and an AI provider configured (`LLM_BASE_URL`), this prints
the whole call: the first message, the scripted caller's lines, the tool calls to the demo shop API
and their spoken results, the analysis (`call_outcome`) and the signed callback's delivery.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from calls import demo, representations, services
from calls.admin_talk import NO_PROVIDER_HELP
from calls.models import Agent, Call, SipTrunk, WebhookDelivery
from rules import ai
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Place a call with the demo's talking agent on its scripted trunk and print it as it happens."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--wait", type=float, default=120.0, help="Seconds to wait for the call to end")

    def handle(self, *args, wait: float, **options) -> None:
        tenant = Tenant.objects.filter(slug="demo").first()
        agent = Agent.objects.filter(tenant=tenant, agent_code=demo.TALKING_AGENT_CODE).first()
        trunk = SipTrunk.objects.filter(tenant=tenant, name=demo.SCRIPTED_TRUNK_NAME).first()
        if tenant is None or agent is None or trunk is None:
            raise CommandError("No demo agent: run `make run` (or `manage.py load_demo`) first.")
        if ai.provider_for(tenant) is None:
            raise CommandError(NO_PROVIDER_HELP)
        body = {
            "phone_number": "+14155552671",
            "agent_id": str(agent.pk),
            "sip_trunk_id": str(trunk.pk),
            "metadata": dict((agent.input_schema or {}).get("sample_context") or {}),
            "callback_url": f"{settings.PUBLIC_BASE_URL}/demo-api/call-callbacks",
        }
        call = services.trigger_call(tenant, body).call
        self.stdout.write(
            f"Call {call.pk} placed (status at {settings.PUBLIC_BASE_URL}{representations.poll_url(call)})"
        )
        call = self._follow(call, time.monotonic() + wait)
        self.stdout.write(f"Status: {call.status}")
        self.stdout.write(f"Outcome: {call.call_outcome}")
        self._callback(call, time.monotonic() + 30)

    def _follow(self, call: Call, deadline: float) -> Call:
        shown = 0
        while time.monotonic() < deadline:
            call.refresh_from_db()
            conversation = call.conversation
            messages = list(conversation.messages.order_by("created_at", "id")) if conversation is not None else []
            for line in representations.transcript(call, messages)["messages"][shown:]:
                self.stdout.write(f"  {line['role']:>6}: {line['text']}")
                shown += 1
            if call.is_terminal:
                return call
            time.sleep(0.3)
        raise CommandError("The call did not end in time: is the worker running (`make run`)?")

    def _callback(self, call: Call, deadline: float) -> None:
        while time.monotonic() < deadline:
            delivery = WebhookDelivery.objects.filter(call=call).first()
            if delivery is not None and delivery.status != "pending":
                self.stdout.write(
                    f"Callback {delivery.event} to {delivery.url}: {delivery.status}, HTTP {delivery.last_status_code}"
                )
                return
            time.sleep(0.3)
        self.stdout.write("Callback not delivered yet (see Webhook deliveries in the admin).")
