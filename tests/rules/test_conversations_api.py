from __future__ import annotations

import pytest

from rules.models import Conversation, Message
from tenants.models import Role
from tests.rules.conftest import reply

URL = "/api/v1/conversations"


@pytest.fixture
def greeting(tenant, make_rule):
    return make_rule(
        tenant,
        "Greeting",
        trigger={"type": "regex", "pattern": r"hello (?P<who>\w+)"},
        actions=[reply("Hi {who}, I am {bot}.")],
    )


def test_member_creates_a_conversation_and_talks_in_it(clients, greeting):
    member = clients[Role.MEMBER]
    created = member.post(
        URL, {"channel": "api", "variables": {"bot": "Switchboard"}, "visitor_id": "v-1"}, format="json"
    )
    assert created.status_code == 201
    conversation = created.json()
    assert conversation["variables"] == {"bot": "Switchboard"}
    assert conversation["identity_verified"] is False

    answered = member.post(f"{URL}/{conversation['id']}/messages", {"text": "hello Ada"}, format="json")

    assert answered.status_code == 200
    body = answered.json()
    assert body["reply"] == "Hi Ada, I am Switchboard."
    assert [(m["role"], m["text"]) for m in body["messages"]] == [
        ("visitor", "hello Ada"),
        ("assistant", "Hi Ada, I am Switchboard."),
    ]
    assert body["messages"][1]["rule"] == {"id": str(greeting.id), "name": "Greeting"}
    assert body["matched_rules"] == [{"id": str(greeting.id), "name": "Greeting"}]

    history = clients[Role.VIEWER].get(f"{URL}/{conversation['id']}/messages").json()
    assert [m["role"] for m in history["results"]] == ["visitor", "assistant"]


def test_patch_variables_and_identity_verified(clients, tenant):
    conversation = Conversation.objects.create(tenant=tenant, variables={"a": 1})
    response = clients[Role.MEMBER].patch(
        f"{URL}/{conversation.id}", {"variables": {"b": 2}, "identity_verified": True}, format="json"
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.variables, conversation.identity_verified) == ({"b": 2}, True)
    assert (
        clients[Role.MEMBER].patch(f"{URL}/{conversation.id}", {"channel": "voice"}, format="json").status_code == 400
    )
    assert clients[Role.MEMBER].patch(f"{URL}/{conversation.id}", {"variables": [1]}, format="json").status_code == 400


def test_viewer_cannot_converse_or_change(clients, tenant):
    conversation = Conversation.objects.create(tenant=tenant)
    viewer = clients[Role.VIEWER]
    assert viewer.post(URL, {"channel": "api"}, format="json").status_code == 403
    response = viewer.post(f"{URL}/{conversation.id}/messages", {"text": "hi"}, format="json")
    assert response.status_code == 403
    assert response.json() == {"error": "This action requires the member role"}
    assert viewer.patch(f"{URL}/{conversation.id}", {"identity_verified": True}, format="json").status_code == 403
    assert clients[Role.MEMBER].delete(f"{URL}/{conversation.id}").status_code == 403
    assert not Message.objects.exists()


def test_other_tenants_conversations_are_404(clients, other_client, tenant):
    conversation = Conversation.objects.create(tenant=tenant)
    assert other_client.get(f"{URL}/{conversation.id}").status_code == 404
    assert other_client.post(f"{URL}/{conversation.id}/messages", {"text": "hi"}, format="json").status_code == 404
    assert other_client.get(f"{URL}/{conversation.id}/messages").status_code == 404
    assert other_client.patch(f"{URL}/{conversation.id}", {"variables": {}}, format="json").status_code == 404
    assert other_client.get(URL).json()["results"] == []
    assert clients[Role.MEMBER].get(f"{URL}/not-a-uuid").status_code == 404


def test_message_text_is_validated(clients, tenant, settings):
    conversation = Conversation.objects.create(tenant=tenant)
    member = clients[Role.MEMBER]
    too_long = "x" * (settings.MESSAGE_MAX_CHARS + 1)
    assert member.post(f"{URL}/{conversation.id}/messages", {"text": too_long}, format="json").status_code == 400
    assert member.post(f"{URL}/{conversation.id}/messages", {"text": ""}, format="json").status_code == 400
    assert member.post(f"{URL}/{conversation.id}/messages", {"text": "hi", "x": 1}, format="json").status_code == 400
    response = member.post(f"{URL}/{conversation.id}/messages", "{bad", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("Malformed request body")
