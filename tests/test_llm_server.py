"""The scripted OpenAI-compatible server itself: what other apps' tests rely on."""

from __future__ import annotations

import pytest

from rules import ai


def test_queued_answers_come_in_order_and_then_the_default(llm):
    llm.say("first").call_tool("lookup", {"id": 7}, text="checking").json({"ok": True})
    provider = ai.provider_for(None)
    messages = [{"role": "user", "content": "hi"}]

    assert provider.tool_call(messages, []).content == "first"
    second = provider.tool_call(messages, [{"type": "function", "function": {"name": "lookup"}}])
    assert (second.content, second.tool_calls) == ("checking", [ai.ToolCall("call_1", "lookup", {"id": 7})])
    assert provider.tool_call(messages, []).content == '{"ok": true}'
    assert provider.tool_call(messages, []).content == llm.reply_text
    assert llm.calls == 4 and llm.pending == 0


def test_errors_and_delays_reach_the_client(llm, settings):
    provider = ai.provider_for(None)
    llm.error(503)
    with pytest.raises(ai.AIError, match="503"):
        provider.tool_call([{"role": "user", "content": "hi"}], [])

    settings.LLM_READ_TIMEOUT = 0.2
    llm.say("too late", delay=1.0)
    with pytest.raises(ai.AIError, match="unreachable"):
        ai.provider_for(None).tool_call([{"role": "user", "content": "hi"}], [])


def test_malformed_arguments_are_sent_as_given(llm):
    llm.call_tool("lookup", "{not json")
    result = ai.provider_for(None).tool_call([{"role": "user", "content": "hi"}], [])
    assert result.tool_calls == [ai.ToolCall("call_1", "lookup", {}, malformed=True)]


def test_classification_is_never_taken_from_the_queue(llm):
    llm.true_conditions = {"asks about orders"}
    llm.say("queued for the agent")
    matches = ai.provider_for(None).classify("where is my order", [ai.Condition("r1", "asks about orders")])
    assert matches == ["r1"] and llm.pending == 1


def test_structured_output_falls_back_to_json_in_the_reply(llm):
    llm.error(400).say('Here it is: ```json\n{"disposition": "paid"}\n```')
    schema = {"type": "object", "properties": {"disposition": {"type": "string"}}}
    answer = ai.provider_for(None).structured([{"role": "user", "content": "t"}], schema, name="analysis")
    first, second = llm.requests()
    assert answer == {"disposition": "paid"}
    assert first["response_format"]["json_schema"] == {"name": "analysis", "schema": schema}
    assert "response_format" not in second and "JSON object" in second["messages"][-1]["content"]
