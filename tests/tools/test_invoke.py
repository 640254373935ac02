"""POST /api/v1/tools/{tool_name}/invoke: burden levels enforced on the server (a real local server
counts what was sent), arguments validated, `say` rendered, the call logged in the conversation."""

from __future__ import annotations

import pytest

from integrations.models import ApiCallLog, Connection, Credential
from rules.models import Conversation, Message

BALANCE = {"balance": 120, "currency": "PEN"}


def invoke(client, tool_name: str, conversation, arguments=None, **extra):
    body = {"conversation_id": str(conversation.pk), "arguments": arguments or {}, **extra}
    return client.post(f"/api/v1/tools/{tool_name}/invoke", body, format="json")


@pytest.fixture
def bank(http_server):
    """The business's API: GET /balance answers BALANCE; POST /transfers answers 201."""
    http_server.route("GET", "/balance", lambda request: (200, {}, BALANCE))
    http_server.route("POST", "/transfers", lambda request: (201, {}, {"id": "tr_1", "echo": request.json()}))
    http_server.route("GET", "/broken", lambda request: (500, {}, {"message": "database down"}))
    return http_server


@pytest.mark.parametrize("burden", ["ambient", "conversational", "requested"])
def test_light_burden_levels_run_at_once(member, tenant, bank, make_endpoint, conversation, burden):
    make_endpoint(
        tenant, "get_balance", path="/balance", burden=burden, response_template="Your balance is {{response.balance}}."
    )

    response = invoke(member, "get_balance", conversation)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert bank.count("/balance") == 1
    assert body["status"] == "success" and body["status_code"] == 200 and body["body"] == BALANCE
    assert set(body) >= {"headers", "timestamp", "duration_ms", "attempts", "mapped", "say"}
    assert "error" not in body
    assert body["say"] == "Your balance is 120."


def test_confirmed_tool_refuses_without_confirmation_and_sends_nothing(
    member, tenant, bank, make_endpoint, conversation
):
    make_endpoint(
        tenant,
        "transfer_money",
        description="Transfers money to another account.",
        method="POST",
        path="/transfers",
        body_type="json",
        burden="confirmed",
        parameters=[
            {"name": "to_account", "location": "body", "type": "string", "required": True},
            {"name": "amount", "location": "body", "type": "number", "required": True},
        ],
    )
    arguments = {"to_account": "ACC-9", "amount": "50"}

    refused = invoke(member, "transfer_money", conversation, arguments)

    assert refused.status_code == 409
    assert refused.json() == {
        "error": "Confirmation required",
        "confirmation_prompt": "Please confirm: Transfers money to another account with to_account=ACC-9, amount=50.",
        "tool": "transfer_money",
        "arguments": {"to_account": "ACC-9", "amount": 50},
    }
    assert invoke(member, "transfer_money", conversation, arguments, confirmed=False).status_code == 409
    assert bank.count("/transfers") == 0
    assert not ApiCallLog.objects.exists()
    assert not Message.objects.filter(conversation=conversation).exists()

    confirmed = invoke(member, "transfer_money", conversation, arguments, confirmed=True)

    assert confirmed.status_code == 200, confirmed.json()
    assert confirmed.json()["status"] == "success" and confirmed.json()["status_code"] == 201
    assert bank.count("/transfers") == 1
    assert bank.last.json() == {"to_account": "ACC-9", "amount": 50}


def test_a_model_may_pass_the_confirmation_among_the_arguments(member, tenant, bank, make_endpoint, conversation):
    make_endpoint(tenant, "transfer_money", method="POST", path="/transfers", body_type="json", burden="confirmed")

    assert invoke(member, "transfer_money", conversation, {"confirmed": False}).status_code == 409
    assert bank.count("/transfers") == 0
    response = invoke(member, "transfer_money", conversation, {"confirmed": True})

    assert response.status_code == 200, response.json()
    assert bank.count("/transfers") == 1
    assert bank.last.json() == {}  # the flag is not an argument of the endpoint


def test_verified_tool_refuses_until_the_identity_is_verified(member, tenant, bank, make_endpoint, conversation):
    make_endpoint(tenant, "get_balance", path="/balance", burden="verified")

    refused = invoke(member, "get_balance", conversation)

    assert refused.status_code == 403
    assert refused.json() == {
        "error": "Tool get_balance requires the caller's identity to be verified in this conversation first"
    }
    assert bank.count("/balance") == 0
    assert not ApiCallLog.objects.exists()

    patched = member.patch(f"/api/v1/conversations/{conversation.pk}", {"identity_verified": True}, format="json")
    assert patched.status_code == 200, patched.json()
    response = invoke(member, "get_balance", conversation)

    assert response.status_code == 200, response.json()
    assert bank.count("/balance") == 1


def test_say_is_null_without_a_response_template(member, tenant, bank, make_endpoint, conversation):
    make_endpoint(tenant, "get_balance", path="/balance")

    body = invoke(member, "get_balance", conversation).json()

    assert body["status"] == "success" and body["say"] is None


def test_say_renders_the_response_with_mapped_values_and_session_variables(
    member, tenant, bank, make_endpoint, conversation
):
    make_endpoint(
        tenant,
        "get_balance",
        path="/balance",
        response_mapping={"amount": "balance"},
        response_template="{{customer_name}}, your current balance is {{amount}} {{response.currency}}.",
    )

    body = invoke(member, "get_balance", conversation).json()

    assert body["mapped"] == {"amount": 120}
    assert body["say"] == "Ada, your current balance is 120 PEN."


def test_say_on_failure_replaces_the_response_on_an_error(member, tenant, bank, make_endpoint, conversation):
    make_endpoint(
        tenant,
        "get_balance",
        path="/broken",
        response_template="Your balance is {{response.balance}}.",
        say_on_failure="Sorry {{customer_name}}, I cannot see your balance right now.",
    )

    response = invoke(member, "get_balance", conversation)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "error" and body["status_code"] == 500 and body["error"] == "HTTP 500"
    assert body["say"] == "Sorry Ada, I cannot see your balance right now."
    assert bank.count("/broken") == 1


def test_say_on_failure_also_when_nothing_could_be_sent(member, tenant, make_endpoint, conversation, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    settings.OUTBOUND_ALLOWED_HOSTS = []
    make_endpoint(tenant, "get_balance", path="/balance", say_on_failure="The bank is not answering.")

    body = invoke(member, "get_balance", conversation).json()

    assert body["status"] == "failure" and body["error"].startswith("destination not allowed")
    assert body["say"] == "The bank is not answering."


def test_the_call_is_logged_in_the_conversation_and_the_api_call_log(member, tenant, bank, make_endpoint, conversation):
    make_endpoint(
        tenant,
        "transfer_money",
        method="POST",
        path="/transfers",
        body_type="json",
        burden="requested",
        response_template="Done: {{response.id}}.",
        parameters=[
            {"name": "to_account", "location": "body", "type": "string", "required": True},
            {"name": "card_token", "location": "body", "type": "string"},
        ],
    )

    body = invoke(
        member, "transfer_money", conversation, {"to_account": "ACC-9", "card_token": "tok_live_123456"}
    ).json()

    message = Message.objects.get(conversation=conversation)
    assert message.role == "tool"
    assert message.text == "transfer_money: success"
    assert message.data == {
        "tool": "transfer_money",
        "arguments": {"to_account": "ACC-9", "card_token": "••••"},
        "confirmed": False,
        "status": "success",
        "status_code": 201,
        "error": None,
        "say": "Done: tr_1.",
        "api_call_log_id": message.data["api_call_log_id"],
    }
    log = ApiCallLog.objects.get()
    assert str(log.pk) == message.data["api_call_log_id"]
    assert log.trigger == "tool" and log.status == "success" and log.tenant == tenant
    assert log.actor.startswith("API key member test key")
    assert body["say"] == "Done: tr_1."
    history = member.get(f"/api/v1/conversations/{conversation.pk}/messages").json()["results"]
    assert [(m["role"], m["text"]) for m in history] == [("tool", "transfer_money: success")]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "arguments: missing required parameter: account_id"),
        ({"account_id": "A1", "months": "soon"}, "arguments: parameter months must be an integer"),
        ({"account_id": "A1", "months": 7}, "arguments: parameter months must be one of: 6, 12, 24"),
        ({"account_id": "A1", "verbose": True}, "arguments: unknown argument: verbose"),
        ({"account_id": {"id": 1}}, "arguments: parameter account_id must be a string"),
        ({"account_id": "A1", "flags": "x"}, "arguments: parameter flags must be an array"),
    ],
)
def test_bad_arguments_are_400_naming_the_argument(
    member, tenant, bank, make_endpoint, conversation, arguments, message
):
    make_endpoint(
        tenant,
        "get_balance",
        path="/balance",
        parameters=[
            {"name": "account_id", "location": "query", "type": "string", "required": True},
            {"name": "months", "location": "query", "type": "integer", "enum": [6, 12, 24]},
            {"name": "flags", "location": "query", "type": "array"},
        ],
    )

    response = invoke(member, "get_balance", conversation, arguments)

    assert response.status_code == 400
    assert response.json()["error"] == message
    assert response.json()["details"]["arguments"][0] == message.removeprefix("arguments: ")
    assert bank.count() == 0


def test_malformed_invocations_are_400(member, tenant, make_endpoint, conversation):
    make_endpoint(tenant, "get_balance", path="/balance")
    url = "/api/v1/tools/get_balance/invoke"

    unknown = member.post(url, {"conversation_id": str(conversation.pk), "args": {}}, format="json")
    not_object = member.post(url, {"conversation_id": str(conversation.pk), "arguments": [1]}, format="json")
    no_conversation = member.post(url, {"arguments": {}}, format="json")

    assert unknown.status_code == 400 and unknown.json()["details"] == {"args": ["Unknown field."]}
    assert not_object.status_code == 400 and "arguments" in not_object.json()["details"]
    assert no_conversation.status_code == 400 and "conversation_id" in no_conversation.json()["details"]


def test_tools_and_conversations_of_another_tenant_are_not_found(
    member, tenant, other_tenant, bank, make_endpoint, conversation
):
    make_endpoint(tenant, "get_balance", path="/balance")
    make_endpoint(other_tenant, "their_balance", path="/balance")
    theirs = Conversation.objects.create(tenant=other_tenant, channel="voice")

    other_tool = invoke(member, "their_balance", conversation)
    other_conversation = invoke(member, "get_balance", theirs)
    unknown_tool = invoke(member, "no_such_tool", conversation)

    for response in (other_tool, other_conversation, unknown_tool):
        assert response.status_code == 404
        assert response.json() == {"error": "Not found."}
    assert bank.count() == 0
    assert not Message.objects.exists()


def test_a_viewer_cannot_invoke(viewer, tenant, bank, make_endpoint, conversation):
    make_endpoint(tenant, "get_balance", path="/balance", burden="ambient")

    response = invoke(viewer, "get_balance", conversation)

    assert response.status_code == 403
    assert response.json() == {"error": "This action requires the member role"}
    assert bank.count() == 0


def test_secrets_never_reach_say_or_the_tool_message(member, tenant, http_server, make_endpoint, conversation):
    token = "tok-live-abcdefghijklmnop"
    endpoint = make_endpoint(
        tenant, "whoami", path="/echo", response_template="You sent {{response.headers.Authorization}}"
    )
    credential = Credential.objects.create(tenant=tenant, name="Bank", type="bearer", secrets={"token": token})
    Connection.objects.filter(pk=endpoint.connection_id).update(credential=credential)

    response = invoke(member, "whoami", conversation)

    assert response.status_code == 200, response.json()
    assert http_server.last.header("Authorization") == f"Bearer {token}"
    assert token not in response.content.decode()
    assert response.json()["say"] == "You sent Bearer ••••"
    assert token not in str(Message.objects.get(conversation=conversation).data)
