from __future__ import annotations

import threading

import pytest
from django.db import connection as db_connection

from integrations.models import ApiCallLog
from rules.engine import evaluate_message
from rules.models import Conversation, Message, Rule
from tests.rules.conftest import reply

ORDER = {"type": "regex", "pattern": r"order #?(?P<orderId>\d+)", "flags": "i"}


def order_api(api, status=200, body=None):
    def answer(request):
        order_id = request.path.rsplit("/", 1)[1]
        return status, {}, body or {"data": {"id": order_id, "status": "shipped", "eta": "2026-11-24"}}

    api.route("GET", "/orders/*", answer)


@pytest.fixture
def orders(tenant, api, make_endpoint):
    order_api(api)
    return make_endpoint(tenant, api, mapping={"order_status": "data.status", "delivery_eta": "data.eta"})


def test_regex_groups_feed_call_api_whose_mapping_feeds_the_reply(tenant, conversation, orders, api, make_rule):
    rule = make_rule(
        tenant,
        "Order status",
        trigger=ORDER,
        actions=[
            {"type": "CALL_API", "endpoint": str(orders.id), "params": {"orderId": "{orderId}"}},
            reply("Order {orderId} is {order_status}, arriving {delivery_eta}."),
        ],
    )
    result = evaluate_message(conversation, "Where is my ORDER #12345?")

    assert result.reply == "Order 12345 is shipped, arriving 2026-11-24."
    assert api.count("/orders/12345") == 1
    assert result.rules[0].match == {"span": [12, 24], "text": "ORDER #12345", "groups": {"orderId": "12345"}}
    conversation.refresh_from_db()
    assert conversation.variables == {"name": "Ada", "order_status": "shipped", "delivery_eta": "2026-11-24"}
    roles = list(conversation.messages.values_list("role", "text", "rule_id"))
    assert roles[0] == ("visitor", "Where is my ORDER #12345?", None)
    assert roles[-1] == ("assistant", "Order 12345 is shipped, arriving 2026-11-24.", rule.id)
    assert [r[0] for r in roles] == ["visitor", "tool", "assistant"]
    assert ApiCallLog.objects.filter(tenant=tenant, trigger="rule").count() == 1


def test_priority_order_first_match_wins_and_always_is_the_fallback(tenant, conversation, make_rule):
    make_rule(tenant, "Fallback", priority=100, actions=[reply("fallback")])
    make_rule(
        tenant, "Hello", priority=5, trigger={"type": "regex", "pattern": "hello", "flags": "i"}, actions=[reply("hi!")]
    )
    make_rule(tenant, "Hello too", priority=6, trigger={"type": "regex", "pattern": "hello"}, actions=[reply("never")])
    make_rule(tenant, "Inactive", priority=1, is_active=False, actions=[reply("inactive")])

    assert evaluate_message(conversation, "HELLO there").reply == "hi!"
    assert evaluate_message(conversation, "something else").reply == "fallback"
    outcomes = [(t.rule.name, t.outcome) for t in evaluate_message(conversation, "hello", dry_run=True).rules]
    assert outcomes == [("Hello", "matched"), ("Hello too", "not_reached"), ("Fallback", "not_reached")]


def test_continue_matching_runs_later_rules_too(tenant, conversation, make_rule):
    make_rule(
        tenant,
        "Greet",
        priority=1,
        continue_matching=True,
        trigger={"type": "regex", "pattern": "hi"},
        actions=[{"type": "SET_VARIABLE", "name": "greeted", "value": "yes"}, reply("Hello {name}.")],
    )
    make_rule(tenant, "Then", priority=2, actions=[reply("Greeted: {greeted}.")])
    make_rule(tenant, "Not reached", priority=3, actions=[reply("no")])

    result = evaluate_message(conversation, "hi")

    assert result.reply == "Hello Ada.\n\nGreeted: yes."
    assert [m.text for m in result.messages if m.role == "assistant"] == ["Hello Ada.", "Greeted: yes."]
    conversation.refresh_from_db()
    assert conversation.variables["greeted"] == "yes"


def test_no_match_means_no_reply(tenant, conversation, make_rule):
    make_rule(tenant, "Only prices", trigger={"type": "regex", "pattern": "price"}, actions=[reply("x")])
    result = evaluate_message(conversation, "hello")
    assert result.reply is None
    assert list(conversation.messages.values_list("role", flat=True)) == ["visitor"]


@pytest.mark.parametrize(
    ("on_error", "expected_reply", "expected_calls"),
    [
        ("continue", "After: {}".format(""), 1),
        ("fail", "We could not check that.", 1),
        ("retry", "We could not check that.", 3),
        ("branch", "Branch ran for 7 (status 503).", 1),
    ],
)
def test_error_policies(tenant, conversation, api, make_endpoint, make_rule, on_error, expected_reply, expected_calls):
    order_api(api, status=503, body={"error": "down"})
    endpoint = make_endpoint(tenant, api, mapping={"order_status": "data.status"})
    endpoint.connection.retry = {"max_retries": 2, "base_delay": 0.01, "max_delay": 0.02, "retry_statuses": [429]}
    endpoint.connection.save()
    action = {
        "type": "CALL_API",
        "endpoint": str(endpoint.id),
        "params": {"orderId": "{orderId}"},
        "on_error": on_error,
    }
    if on_error == "branch":
        action["branch"] = [reply("Branch ran for {orderId} (status {{api.status_code}}).")]
    make_rule(
        tenant,
        "Order",
        trigger=ORDER,
        actions=[action, reply("After: {order_status}")],
        fallback_text="We could not check that.",
    )

    result = evaluate_message(conversation, "order 7")

    assert result.reply == expected_reply
    assert api.count("/orders/7") == expected_calls


def test_set_variable_renders_templates_and_persists(tenant, conversation, make_rule):
    make_rule(
        tenant,
        "Remember",
        trigger={"type": "regex", "pattern": r"my name is (?P<who>\w+)"},
        actions=[{"type": "SET_VARIABLE", "name": "name", "value": "{who}"}, reply("Nice to meet you, {{name}}!")],
    )
    assert evaluate_message(conversation, "my name is Grace").reply == "Nice to meet you, Grace!"
    conversation.refresh_from_db()
    assert conversation.variables == {"name": "Grace"}
    # Regex groups are variables for the rule's actions only, not session variables.
    assert "who" not in conversation.variables


def test_a_rule_version_change_is_seen_on_the_next_message(tenant, conversation, make_rule):
    rule = make_rule(tenant, "Hi", trigger={"type": "regex", "pattern": "hi"}, actions=[reply("one")])
    assert evaluate_message(conversation, "hi").reply == "one"
    rule.pattern = "hello"
    rule.save()
    assert evaluate_message(conversation, "hi").reply is None
    assert evaluate_message(conversation, "hello").reply == "one"


def test_many_rules_use_the_set_prefilter_and_still_respect_priority(tenant, conversation, make_rule):
    for n in range(80):
        make_rule(
            tenant,
            f"r{n}",
            priority=n,
            trigger={"type": "regex", "pattern": rf"\bword{n}\b"},
            actions=[reply(f"rule {n}")],
        )
    result = evaluate_message(conversation, "word79 and word42")
    assert result.reply == "rule 42"
    assert [trace.rule.name for trace in result.rules] == ["r42"]  # only the set's candidates are visited
    assert evaluate_message(conversation, "nothing").reply is None


@pytest.mark.django_db(transaction=True)
def test_two_messages_at_once_do_not_lose_variable_updates(tenant, api, make_endpoint, make_rule):
    import time

    def slow(request):
        time.sleep(0.3)
        return 200, {}, {"value": request.path.rsplit("/", 1)[1]}

    api.route("GET", "/things/*", slow)
    first = make_endpoint(tenant, api, path="/things/a", mapping={"a": "value"})
    second = make_endpoint(tenant, api, path="/things/b", mapping={"b": "value"})
    make_rule(
        tenant,
        "A",
        trigger={"type": "regex", "pattern": "^a$"},
        actions=[{"type": "CALL_API", "endpoint": str(first.id)}],
    )
    make_rule(
        tenant,
        "B",
        trigger={"type": "regex", "pattern": "^b$"},
        actions=[{"type": "CALL_API", "endpoint": str(second.id)}],
    )
    conversation = Conversation.objects.create(tenant=tenant, variables={"start": 1})

    errors = []

    def send(text):
        try:
            evaluate_message(Conversation.objects.get(pk=conversation.pk), text)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=send, args=(t,)) for t in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    conversation.refresh_from_db()
    assert conversation.variables == {"start": 1, "a": "a", "b": "b"}
    assert Message.objects.filter(conversation=conversation, role="visitor").count() == 2


def _delete_before_persisting(monkeypatch, rule) -> None:
    from rules import transcript

    real_persist = transcript.persist

    def delete_then_persist(*args):
        Rule.objects.filter(pk=rule.pk).delete()
        return real_persist(*args)

    monkeypatch.setattr(transcript, "persist", delete_then_persist)


def test_a_rule_deleted_during_evaluation_does_not_break_the_reply(tenant, conversation, make_rule, monkeypatch):
    rule = make_rule(tenant, "Bye", actions=[reply("bye")])
    _delete_before_persisting(monkeypatch, rule)
    assert evaluate_message(conversation, "x").reply == "bye"
    assert conversation.messages.get(role="assistant").rule_id is None


@pytest.mark.django_db(transaction=True)
def test_a_rule_deleted_during_evaluation_outside_a_transaction_is_caught_at_commit(
    tenant, conversation, make_rule, monkeypatch
):
    # given a message persisted in a transaction of its own (the foreign key is checked at COMMIT)
    rule = make_rule(tenant, "Bye", actions=[reply("bye")])
    _delete_before_persisting(monkeypatch, rule)
    # when its rule is deleted just before the write, the write is redone without the rule
    assert evaluate_message(conversation, "x").reply == "bye"
    assert list(conversation.messages.values_list("role", "text", "rule_id")) == [
        ("visitor", "x", None),
        ("assistant", "bye", None),
    ]
