"""A rule's `on_error: retry` is applied by the executor: one retry loop, one formula, one log row."""

from __future__ import annotations

from integrations.models import ApiCallLog
from rules.engine import evaluate_message
from tests.rules.conftest import reply

ORDER = {"type": "regex", "pattern": r"order #?(?P<orderId>\d+)", "flags": "i"}


def retrying_rule(tenant, endpoint, make_rule):
    action = {"type": "CALL_API", "endpoint": str(endpoint.id), "params": {}, "on_error": "retry"}
    return make_rule(tenant, "Order", trigger=ORDER, actions=[action, reply("Done")], fallback_text="Sorry.")


def test_retry_is_one_execution_with_one_log_row(tenant, conversation, api, make_endpoint, make_rule):
    # 500 is not one of the connection's retry statuses: only `retry` makes it worth another try.
    api.route("GET", "/orders", lambda request: (500, {}, {"error": "down"}))
    endpoint = make_endpoint(tenant, api, path="/orders")
    endpoint.connection.retry = {"max_retries": 2, "base_delay": 0.01, "max_delay": 0.02, "retry_statuses": [429]}
    endpoint.connection.save()
    retrying_rule(tenant, endpoint, make_rule)

    result = evaluate_message(conversation, "order 7")

    assert api.count("/orders") == 3
    log = ApiCallLog.objects.get(endpoint=endpoint)  # was one row per round of the engine's own loop
    assert log.attempts == 3 and log.status == "error"
    assert [a.get("attempts") for a in result.actions if a["type"] == "CALL_API"] == [3]
    assert result.reply == "Sorry."


def test_retry_waits_as_the_server_asks(tenant, conversation, api, make_endpoint, make_rule):
    # The engine's old loop ignored Retry-After and slept its own backoff (here 0.01 s).
    endpoint = make_endpoint(tenant, api, path="/retry-after", query={"times": "1", "status": "500", "seconds": "0.3"})
    endpoint.connection.retry = {"max_retries": 1, "base_delay": 0.01, "max_delay": 5, "retry_statuses": [429]}
    endpoint.connection.save()
    retrying_rule(tenant, endpoint, make_rule)

    result = evaluate_message(conversation, "order 7")

    assert result.reply == "Done"
    first, second = api.requests
    assert second.at - first.at >= 0.29
    assert ApiCallLog.objects.get(endpoint=endpoint).attempts == 2


def test_without_retry_a_non_retry_status_is_tried_once(tenant, conversation, api, make_endpoint, make_rule):
    api.route("GET", "/orders", lambda request: (500, {}, {"error": "down"}))
    endpoint = make_endpoint(tenant, api, path="/orders")
    endpoint.connection.retry = {"max_retries": 2, "base_delay": 0.01, "retry_statuses": [429]}
    endpoint.connection.save()
    action = {"type": "CALL_API", "endpoint": str(endpoint.id), "params": {}, "on_error": "fail"}
    make_rule(tenant, "Order", trigger=ORDER, actions=[action], fallback_text="Sorry.")

    evaluate_message(conversation, "order 7")

    assert api.count("/orders") == 1
