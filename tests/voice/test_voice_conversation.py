"""The voice worker's conversation, text-only in LiveKit Agents' own test session (`AgentSession.run`):
§14's runtime against the local OpenAI-compatible server, a real local customer API as a tool, and the
outcome reported through the one call-event service."""

from __future__ import annotations

import pytest

from calls.dialers.livekit_client import run_sync
from calls.models import Agent, Call, CallStatus
from tests.voice.conftest import place_and_dial, trigger

pytestmark = pytest.mark.django_db(transaction=True)  # the runtime runs in worker threads, as in the worker

ANALYSIS_ANSWER = {
    "disposition": "promised_to_pay",
    "summary": "Rahul asked for his balance and promised to pay on 20 June.",
    "sentiment": "positive",
    "extracted": {"preferred_date": "2026-06-20"},
}


@pytest.fixture
def phone_agent(tenant, customer_endpoints) -> Agent:
    agent = Agent.objects.create(
        tenant=tenant,
        name="Asha",
        agent_code="asha-collections",
        prompt="You are Asha from Acme Finance calling {{customer_name}}.",
        first_message="Hello {{customer_name}}, this is Asha from Acme Finance about {{amount_due}} rupees.",
        input_schema={"fields": ["customer_name", "amount_due"], "sample_context": {}},
        analysis={
            "dispositions": ["promised_to_pay", "refused"],
            "extract": [{"name": "preferred_date", "type": "date", "description": "the promised date"}],
        },
        end_call_message="Thank you {{customer_name}}, goodbye.",
        voice="alloy",
        language="en-IN",
    )
    agent.tools.set([customer_endpoints["balance"]])
    return agent


def converse(call: Call, lines: list[str]):
    """What the worker's job does once the callee is in the room, with text in place of audio."""
    from calls.voice import session as voice

    async def run():
        conversation = voice.CallConversation(call)
        agent = voice.CallAgent(conversation)
        results = []
        async with voice.build_session(conversation, agent) as session:
            results.append(await session.start(agent, capture_run=True))
            for line in lines:
                results.append(await session.run(user_input=line))
                if conversation.ended:
                    break
        return conversation, results

    return run_sync(run)


def spoken(result) -> list[str]:
    return [event.item.text_content for event in result.events if getattr(event, "type", "") == "message"]


def test_a_phone_conversation_runs_the_runtime_with_a_real_tool_and_reports_the_outcome(
    tenant, phone_agent, livekit_trunk, livekit_server, llm, customer_api
):
    call = place_and_dial(
        trigger(tenant, phone_agent, livekit_trunk, metadata={"customer_name": "Rahul", "amount_due": "150000"}).call
    )
    assert call.status == CallStatus.ANSWERED
    llm.call_tool("get_balance", {"account": "AC-42"}, text="One moment.").say("Would you like to pay today?")
    llm.call_tool("end_call", {"reason": "promised to pay"})
    llm.json(ANALYSIS_ANSWER)

    conversation, results = converse(call, ["What do I owe? Account AC-42.", "I'll pay on the 20th of June. Bye."])

    # The first message, rendered with the call's metadata, is spoken when the session starts.
    assert spoken(results[0]) == ["Hello Rahul, this is Asha from Acme Finance about 150000 rupees."]
    # The caller's turn: the tool ran against the customer's API; its messages are spoken verbatim.
    results[1].expect.next_event().is_message(role="assistant")
    assert spoken(results[1]) == [
        "One moment. Let me check that for you. Your current balance is 150000 rupees. Would you like to pay today?"
    ]
    assert customer_api.count("/balance") == 1
    assert customer_api.last.query == {"account": "AC-42"}
    # end_call: the agent says goodbye and the conversation ends.
    assert spoken(results[2]) == ["Thank you Rahul, goodbye."]
    assert conversation.ended

    from calls.voice.session import finish_call

    finish_call(call, conversation.end_reason)
    call.refresh_from_db()
    assert call.status == CallStatus.COMPLETED
    assert call.call_outcome["disposition"] == "promised_to_pay"
    assert call.call_outcome["extracted"] == {"preferred_date": "2026-06-20"}
    event = call.events.get(status=CallStatus.COMPLETED)
    assert (event.source, event.detail["reported_by"]) == ("livekit", "voice_worker")
    # The model never saw the provider key, and every utterance is in the transcript.
    texts = list(call.conversation.messages.values_list("text", flat=True))
    assert "Your current balance is 150000 rupees." in texts


def test_a_webhook_after_the_worker_reported_changes_nothing(
    tenant, phone_agent, livekit_trunk, livekit_server, llm, customer_api
):
    from calls.dialers import livekit
    from calls.voice.session import finish_call

    call = place_and_dial(
        trigger(tenant, phone_agent, livekit_trunk, metadata={"customer_name": "Rahul", "amount_due": "1"}).call
    )
    llm.json(ANALYSIS_ANSWER)
    finish_call(call, "the callee hung up")
    event = livekit.complete(call, None, detail={"event": "room_finished"})
    assert event.ignored
    assert llm.calls == 1  # the analysis ran once: finish is idempotent
