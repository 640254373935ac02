"""The runtime's edges: failure and delay messages, time bounds, concurrent turns, secrets, a persona caller."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from calls import runtime
from calls.dialers import simulated_caller
from calls.models import AgentSession
from integrations.models import Connection, Credential, Endpoint
from rules import ai

pytestmark = pytest.mark.django_db
TOKEN = "tok-secret-value-1234567890"


def test_say_on_failure_replaces_the_result(talk, llm, customer_endpoints, customer_api):
    customer_api.route("GET", "/balance", lambda r: (503, {}, {"error": "down"}))
    Endpoint.objects.filter(pk=customer_endpoints["balance"].pk).update(
        say_on_failure="Sorry, I can't see balances right now."
    )
    llm.call_tool("get_balance", {"account": "AC-42"}).say("Can I help with anything else?")
    turn = runtime.respond(talk, "balance?")
    assert turn.say == [
        "Let me check that for you.",
        "Sorry, I can't see balances right now.",
        "Can I help with anything else?",
    ]
    assert turn.tool_calls[0]["status"] == "error"
    assert '"status": "error"' in llm.requests()[1]["messages"][-1]["content"]


def test_say_on_delay_is_spoken_when_the_tool_is_slow(talk, llm, customer_endpoints, customer_api):
    def slow(request):
        time.sleep(1.2)
        return 200, {}, {"balance": 1}

    customer_api.route("GET", "/balance", slow)
    Endpoint.objects.filter(pk=customer_endpoints["balance"].pk).update(
        say_on_delay="Still checking…", say_on_delay_seconds=1
    )
    llm.call_tool("get_balance", {"account": "AC-42"}).say("There.")
    turn = runtime.respond(talk, "balance?")
    assert turn.say == ["Let me check that for you.", "Still checking…", "Your current balance is 1 rupees.", "There."]


def test_max_duration_ends_the_call(talk, llm, voice_agent):
    runtime.start(talk)
    AgentSession.objects.filter(conversation=talk).update(started_at=timezone.now() - timedelta(seconds=601))
    turn = runtime.respond(talk, "Are you still there?")
    assert turn.ended and turn.say == ["Thank you Rahul, goodbye."] and llm.calls == 0
    assert AgentSession.objects.get(conversation=talk).end_reason == "max_duration"


@pytest.mark.django_db(transaction=True)
def test_a_second_message_while_the_agent_answers_is_refused(talk, llm):
    llm.say("Slow answer.", delay=1.0)
    answered = []

    def first_turn():
        answered.append(runtime.respond(talk, "one").say)
        connection.close()  # this thread's own database connection

    first = threading.Thread(target=first_turn)
    first.start()
    time.sleep(0.3)
    with pytest.raises(runtime.AgentRuntimeError) as error:
        runtime.respond(talk, "two")
    first.join()
    assert error.value.reason == "busy" and answered == [["Slow answer."]]
    llm.say("Now I can answer.")
    assert runtime.respond(talk, "three").say == ["Now I can answer."]


def test_no_secret_reaches_the_model_or_the_turn(tenant, talk, voice_agent, llm, customer_api):
    credential = Credential.objects.create(tenant=tenant, name="Bank", type="bearer", secrets={"token": TOKEN})
    connection = Connection.objects.create(
        tenant=tenant, name="Echo", base_url=customer_api.base_url, credential=credential, retry={"max_retries": 0}
    )
    echo = Endpoint.objects.create(tenant=tenant, connection=connection, name="Echo", tool_name="echo", path="/echo")
    voice_agent.tools.add(echo)
    llm.call_tool("echo", {}).say("Done.")
    turn = runtime.respond(talk, "echo")
    assert customer_api.last.header("Authorization") == f"Bearer {TOKEN}"  # it was sent…
    assert TOKEN not in str(llm.requests()) and TOKEN not in str(turn.to_dict())  # …and never shown
    assert TOKEN not in str(list(talk.messages.values_list("text", "data")))


def test_a_persona_caller_is_played_by_the_provider_and_hangs_up(talk, llm):
    caller = simulated_caller.validate({"persona": "You are Rahul; you will pay on 20 June.", "max_turns": 3})
    provider = ai.provider_for(talk.tenant)
    runtime.start(talk)
    llm.say("Hello, yes, this is Rahul.")
    assert simulated_caller.next_line(caller, 0, talk, provider) == "Hello, yes, this is Rahul."
    persona_request = llm.requests()[-1]
    assert "You are Rahul; you will pay on 20 June." in persona_request["messages"][0]["content"]
    assert persona_request["messages"][1] == {
        "role": "user",
        "content": "Hello Rahul, this is Asha from Acme Finance about your payment of 150000 rupees.",
    }
    llm.say("HANG UP")
    assert simulated_caller.next_line(caller, 1, talk, provider) is None
    assert simulated_caller.next_line(caller, 3, talk, provider) is None  # max_turns reached: no request
    assert llm.calls == 2


def test_a_flood_of_tool_calls_in_one_answer_runs_at_most_ten(talk, llm, customer_api):
    llm.call_tools([("get_balance", {"account": "AC-42"})] * 12).say("Done.")
    turn = runtime.respond(talk, "balance?")
    assert customer_api.count("/balance") == 10
    assert [c["status"] for c in turn.tool_calls][-2:] == ["refused", "refused"]


def test_an_unexpected_failure_in_a_turn_ends_the_call_politely(talk, llm, monkeypatch, caplog):
    from calls.runtime import tooling

    def broken(self, call):
        raise RuntimeError("a bug")

    monkeypatch.setattr(tooling.ToolRunner, "run", broken)
    llm.call_tool("get_balance", {"account": "AC-42"})
    turn = runtime.respond(talk, "balance?")
    assert turn.ended and "technical difficulties" in turn.reply
    assert "agent turn failed" in caplog.text
    session = AgentSession.objects.get(conversation=talk)
    assert (session.end_reason, session.busy_until) == ("error", None)
