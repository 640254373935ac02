from __future__ import annotations

import logging

import pytest

from rules import ai
from rules.engine import evaluate_message
from tests.rules.conftest import reply
from tests.support.llm_server import LLM_KEY

ORDER_STATUS = "The visitor asks about the status of their order"
REFUND = "The visitor wants a refund"
COMPLAINT = "The visitor is complaining"


@pytest.fixture
def ai_rules(tenant, make_rule):
    make_rule(tenant, "Refund", priority=10, trigger={"type": "ai", "condition": REFUND}, actions=[reply("refund")])
    make_rule(tenant, "Order", priority=20, trigger={"type": "ai", "condition": ORDER_STATUS}, actions=[reply("order")])
    make_rule(
        tenant, "Complaint", priority=30, trigger={"type": "ai", "condition": COMPLAINT}, actions=[reply("sorry")]
    )
    make_rule(
        tenant,
        "Fallback",
        priority=100,
        actions=[{"type": "REPLY_AI", "instructions": "Be brief."}],
        fallback_text="Please hold on.",
    )


def test_all_ai_rules_are_judged_in_one_call_per_message(ai_rules, conversation, llm):
    llm.true_conditions = {ORDER_STATUS, COMPLAINT}

    result = evaluate_message(conversation, "Where is my parcel?! This is ridiculous.")

    assert result.reply == "order"
    assert llm.calls == 1
    sent = llm.requests()[0]
    assert sent["model"] == "test-model"
    assert all(c in sent["messages"][1]["content"] for c in (REFUND, ORDER_STATUS, COMPLAINT))
    # A live run stops at the first match (a dry run also lists the rules not reached).
    assert [(t.rule.name, t.outcome) for t in result.rules] == [("Refund", "no_match"), ("Order", "matched")]
    assert llm.server.last.header("Authorization") == f"Bearer {LLM_KEY}"


def test_one_call_even_when_several_ai_rules_continue_matching(tenant, conversation, llm, make_rule):
    for n in range(5):
        make_rule(
            tenant,
            f"AI {n}",
            priority=n,
            continue_matching=True,
            trigger={"type": "ai", "condition": f"c{n}"},
            actions=[reply(f"r{n}")],
        )
    llm.true_conditions = {"c1", "c3"}

    result = evaluate_message(conversation, "hi")

    assert result.reply == "r1\n\nr3"
    assert llm.calls == 1


def test_an_earlier_regex_match_costs_no_ai_call(tenant, ai_rules, conversation, llm, make_rule):
    make_rule(tenant, "Hi", priority=1, trigger={"type": "regex", "pattern": "^hi$"}, actions=[reply("hello")])
    assert evaluate_message(conversation, "hi").reply == "hello"
    assert llm.calls == 0


def test_reply_ai_writes_the_reply_from_the_conversation(ai_rules, conversation, llm):
    llm.reply_text = "Happy to help, Ada!"
    result = evaluate_message(conversation, "Tell me a joke")
    assert result.reply == "Happy to help, Ada!"
    assert llm.calls == 2  # one classification, one reply
    reply_request = llm.requests()[1]
    assert "Be brief." in reply_request["messages"][0]["content"]
    assert '"name": "Ada"' in reply_request["messages"][0]["content"]
    assert reply_request["messages"][-1] == {"role": "user", "content": "Tell me a joke"}


def test_without_a_provider_ai_rules_are_skipped_and_reply_ai_falls_back(ai_rules, conversation):
    result = evaluate_message(conversation, "Where is my order?")

    assert result.reply == "Please hold on."
    assert {t.rule.name: (t.outcome, t.reason) for t in result.rules}["Order"] == (
        "skipped",
        "no AI provider is configured",
    )
    assert result.ai == {"configured": False, "called": False}
    assert conversation.messages.get(role="assistant").data == {
        "kind": "fallback",
        "reason": "no AI provider is configured",
    }


def test_provider_errors_fall_back_and_never_log_the_key(ai_rules, conversation, llm, caplog):
    llm.status = 500
    with caplog.at_level(logging.DEBUG):
        result = evaluate_message(conversation, "Where is my order?")

    assert result.reply == "Please hold on."
    assert result.ai["error"] == "AI provider answered 500"
    assert llm.calls == 2  # the classification and the reply were both tried, once each
    assert LLM_KEY not in caplog.text


def test_unreadable_classification_means_no_verdict(ai_rules, conversation, llm):
    llm.classify_content = "I think it is about orders."
    result = evaluate_message(conversation, "Where is my order?")
    assert {t.rule.name: t.outcome for t in result.rules}["Order"] == "skipped"
    assert result.ai["error"] == "the AI's classification could not be read"


def test_tenant_settings_override_the_global_provider(tenant, settings, llm):
    tenant.llm_base_url = "http://127.0.0.1:9/v1"
    tenant.llm_api_key = "sk-tenant-own"
    tenant.llm_model = ""
    provider = ai.provider_for(tenant)
    assert (provider.base_url, provider.api_key, provider.model) == (
        "http://127.0.0.1:9/v1",
        "sk-tenant-own",
        "test-model",
    )
    tenant.llm_base_url = ""
    assert ai.provider_for(tenant).base_url == llm.base_url
    settings.LLM_BASE_URL = ""
    assert ai.provider_for(tenant) is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"matches": [1, 3]}', [1, 3]),
        ('```json\n{"matches": ["2"]}\n```', [2]),
        ("Sure! [1]", [1]),
        ('{"matches": []}', []),
        ('{"matches": [true, "x", 2]}', [2]),
    ],
)
def test_parse_matches_is_tolerant(content, expected):
    assert ai.parse_matches(content) == expected


def test_tool_call_parses_function_calls(llm):
    llm.call_tool("get_order", {"id": "7"})
    provider = ai.provider_for(None)
    result = provider.tool_call(
        [{"role": "user", "content": "order 7?"}], [{"type": "function", "function": {"name": "get_order"}}]
    )
    assert result.tool_calls == [ai.ToolCall(id="call_1", name="get_order", arguments={"id": "7"})]
    assert llm.requests()[0]["tools"][0]["function"]["name"] == "get_order"
