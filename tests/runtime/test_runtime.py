"""The runtime against a scripted model and a local customer API: tools, burden levels, spoken messages."""

from __future__ import annotations

import pytest

from calls import runtime
from calls.models import AgentSession
from integrations.models import ApiCallLog
from rules.models import MessageRole
from tests.support.llm_server import LLM_KEY

pytestmark = pytest.mark.django_db


def test_the_first_message_is_rendered_with_the_metadata(talk, llm):
    turn = runtime.start(talk)
    assert turn.say == ["Hello Rahul, this is Asha from Acme Finance about your payment of 150000 rupees."]
    assert runtime.start(talk).say == []  # said once
    assert llm.calls == 0


def test_the_prompt_is_rendered_and_the_verification_values_never_reach_the_model(talk, llm):
    llm.say("Hi Rahul.")
    runtime.respond(talk, "Hello?")
    sent = llm.requests()[0]
    system = sent["messages"][0]["content"]
    assert system.startswith("You are Asha from Acme Finance calling Rahul about 150000 rupees.")
    assert "Guidance:" in system and "get_balance" in system
    assert "1990" not in str(sent)
    assert LLM_KEY not in str(sent)
    names = [tool["function"]["name"] for tool in sent["tools"]]
    assert names == ["get_balance", "get_statement", "schedule_payment", "end_call", "verify_identity"]


def test_a_tool_call_reaches_the_api_with_the_callers_value_and_the_template_is_spoken(talk, llm, customer_api):
    llm.call_tool("get_balance", {"account": "AC-42"}, text="One moment.").say("Anything else, Rahul?")
    turn = runtime.respond(talk, "What do I owe? My account is AC-42.")

    assert customer_api.count("/balance") == 1
    assert customer_api.last.query == {"account": "AC-42"}
    assert turn.say == [
        "One moment.",
        "Let me check that for you.",
        "Your current balance is 150000 rupees.",
        "Anything else, Rahul?",
    ]
    assert turn.tool_calls[0]["tool"] == "get_balance" and turn.tool_calls[0]["status"] == "success"
    tool_result = llm.requests()[1]["messages"][-1]
    assert tool_result["role"] == "tool" and '"balance": 150000' in tool_result["content"]
    assert "spoken_to_caller" in tool_result["content"]
    roles = list(talk.messages.values_list("role", flat=True))
    assert roles == ["visitor", "assistant", "assistant", "tool", "assistant", "assistant"]


def test_a_confirmed_tool_runs_only_after_the_read_back_and_the_callers_yes(talk, llm, customer_api):
    llm.call_tool("schedule_payment", {"amount": 5000, "date": "2026-06-20", "confirmed": True})
    turn = runtime.respond(talk, "I'll pay 5000 on the 20th")
    assert customer_api.count("/payments") == 0
    assert turn.say == ["Just to confirm, shall I Schedule a payment with amount=5000, date=2026-06-20?"]
    assert llm.calls == 1  # the turn ends at the question: the caller answers next

    llm.call_tool("schedule_payment", {"amount": 5000, "date": "2026-06-20", "confirmed": True}).say("Done.")
    turn = runtime.respond(talk, "Yes, please")
    assert customer_api.count("/payments") == 1
    assert customer_api.last.json() == {"amount": 5000, "date": "2026-06-20"}
    assert turn.say == ["Your payment of 5000 is scheduled.", "Done."]


def test_a_confirmation_does_not_cover_other_arguments(talk, llm, customer_api):
    llm.call_tool("schedule_payment", {"amount": 5000, "date": "2026-06-20"})
    runtime.respond(talk, "I'll pay 5000 on the 20th")
    llm.call_tool("schedule_payment", {"amount": 9000, "date": "2026-06-20", "confirmed": True})
    turn = runtime.respond(talk, "Yes")
    assert customer_api.count("/payments") == 0
    assert turn.say == ["Just to confirm, shall I Schedule a payment with amount=9000, date=2026-06-20?"]


def test_a_confirmation_in_the_same_turn_is_not_the_callers_yes(talk, llm, customer_api):
    llm.call_tools(
        [
            ("schedule_payment", {"amount": 5000, "date": "2026-06-20"}),
            ("schedule_payment", {"amount": 5000, "date": "2026-06-20", "confirmed": True}),
        ]
    )
    runtime.respond(talk, "I'll pay 5000 on the 20th")
    assert customer_api.count("/payments") == 0


def test_a_verified_tool_is_refused_until_verification_succeeds(talk, llm, customer_api):
    llm.call_tool("get_statement", {}).say("I need to verify you first.")
    turn = runtime.respond(talk, "Read my statement")
    assert customer_api.count("/balance") == 0
    assert turn.tool_calls[0]["status"] == "refused"
    assert "verified" in llm.requests()[1]["messages"][-1]["content"]

    llm.call_tool("verify_identity", {"date_of_birth": "17 May 1990"}).call_tool("get_statement", {}).say("Here.")
    turn = runtime.respond(talk, "I was born on 17 May 1990")
    assert [c["status"] for c in turn.tool_calls] == ["verified", "success"]
    assert customer_api.count("/balance") == 1
    talk.refresh_from_db()
    assert talk.identity_verified


def test_verification_fails_three_times_then_locks(talk, llm):
    for attempt in range(3):
        llm.call_tool("verify_identity", {"date_of_birth": f"1 January 19{80 + attempt}"}).say("That doesn't match.")
        turn = runtime.respond(talk, "wrong date")
        assert turn.tool_calls[0]["status"] == "not_verified"
    llm.call_tool("verify_identity", {"date_of_birth": "1990-05-17"}).say("Sorry.")
    turn = runtime.respond(talk, "1990-05-17")
    assert turn.tool_calls[0]["status"] == "refused"
    talk.refresh_from_db()
    assert not talk.identity_verified
    logged = talk.messages.filter(role=MessageRole.TOOL, data__tool="verify_identity")
    assert all(m.data["arguments"] == {"date_of_birth": "••••"} for m in logged)


def test_malformed_arguments_and_unknown_tools_are_told_to_the_model(talk, llm, customer_api):
    llm.call_tools([("get_balance", "{not json"), ("delete_everything", {})]).say("Let me try again.")
    turn = runtime.respond(talk, "balance?")
    assert [c["status"] for c in turn.tool_calls] == ["refused", "refused"]
    results = [m for m in llm.requests()[1]["messages"] if m["role"] == "tool"]
    assert "not a JSON object" in results[0]["content"]
    assert "no tool named 'delete_everything'" in results[1]["content"]
    assert customer_api.count() == 0 and turn.say == ["Let me try again."]


def test_end_call_speaks_the_end_message_and_ends(talk, llm):
    llm.call_tool("end_call", {"reason": "done"})
    turn = runtime.respond(talk, "Bye")
    assert turn.ended and turn.say == ["Thank you Rahul, goodbye."]
    with pytest.raises(runtime.AgentRuntimeError) as error:
        runtime.respond(talk, "Hello?")
    assert error.value.reason == "ended"


def test_a_provider_timeout_ends_the_call_politely_and_is_recorded(talk, llm, settings):
    settings.LLM_READ_TIMEOUT = 0.2
    llm.say("too late", delay=1.0)
    turn = runtime.respond(talk, "Hello?")
    assert turn.ended and "technical difficulties" in turn.reply
    llm.json({"disposition": "refused", "summary": "Cut short.", "sentiment": "neutral", "extracted": {}})
    outcome = runtime.finish(talk)
    assert "AI provider" in outcome["analysis_error"]


def test_tool_rounds_per_turn_are_bounded(talk, llm, customer_api):
    for _ in range(6):
        llm.call_tool("get_balance", {"account": "AC-42"})
    turn = runtime.respond(talk, "balance?")
    assert customer_api.count("/balance") == 5
    assert turn.say[-1] == "I'm sorry, I couldn't finish that just now."


def test_max_turns_ends_the_call(talk, llm, voice_agent):
    voice_agent.max_turns = 1
    voice_agent.save()
    llm.say("Hi.")
    assert not runtime.respond(talk, "one").ended
    turn = runtime.respond(talk, "two")
    assert turn.ended and turn.say == ["Thank you Rahul, goodbye."] and llm.calls == 1
    assert AgentSession.objects.get(conversation=talk).end_reason == "max_turns"


def test_the_analysis_is_stored_typed_and_idempotent(talk, llm):
    llm.say("Hello.")
    runtime.respond(talk, "I will pay 5000 by UPI on the 20th of June")
    llm.json(
        {
            "disposition": "will_think_about_it",
            "summary": "Rahul promised to pay.",
            "sentiment": "happy",
            "extracted": {"preferred_date": "20 June 2026", "amount": "5000", "channel": "UPI"},
        }
    )
    outcome = runtime.finish(talk)
    assert outcome == {
        "disposition": "unknown",
        "summary": "Rahul promised to pay.",
        "sentiment": "neutral",
        "extracted": {"preferred_date": "2026-06-20", "amount": 5000.0, "channel": "upi"},
    }
    request = llm.requests()[-1]
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["disposition"]["enum"] == [
        "promised_to_pay",
        "refused",
        "callback_requested",
        "unknown",
    ]
    assert "Caller: I will pay 5000" in request["messages"][1]["content"]
    assert runtime.finish(talk) == outcome and llm.pending == 0


def test_without_a_provider_the_runtime_says_what_to_set(talk, settings):
    settings.LLM_BASE_URL = ""
    with pytest.raises(runtime.AgentRuntimeError) as error:
        runtime.respond(talk, "Hello?")
    assert (error.value.reason, str(error.value)) == ("no_provider", "this agent needs an AI provider")
    assert talk.messages.count() == 0
    assert ApiCallLog.objects.count() == 0
