"""The admin's "Talk to this agent" page in a real browser (headless Chromium), and its refusals."""

from __future__ import annotations

import json

from tests.runtime.conftest import METADATA


def test_an_admin_talks_to_the_agent_and_sees_tools_and_analysis(
    page, admin_login, make_staff_user, tenant, voice_agent, llm, customer_api
):
    make_staff_user("operator", tenant, role="member")
    llm.call_tool("get_balance", {"account": "AC-42"}).say("Anything else?")
    llm.json(
        {"disposition": "refused", "summary": "Asked for the balance only.", "sentiment": "neutral", "extracted": {}}
    )

    admin_login("operator")
    page.goto(f"/admin/calls/agent/{voice_agent.pk}/change/")
    page.click("#talk-link")
    page.fill("#metadata", json.dumps(METADATA))
    page.click("#start")
    transcript = page.locator("#transcript")
    assert "Agent: Hello Rahul, this is Asha" in transcript.inner_text()

    page.fill("#caller-text", "What is my balance?")
    page.click("#say")
    text = page.locator("#transcript").inner_text()
    assert "Caller: What is my balance?" in text
    assert "Agent: Your current balance is 150000 rupees." in text and "Agent: Anything else?" in text
    assert "/balance?account=AC-42" in page.locator(".talk-request").inner_text()
    assert "150000" in page.locator(".talk-result").inner_text()
    assert customer_api.count("/balance") == 1
    assert page.locator(".messagelist").count() == 0  # the transcript is not shown as admin notices

    page.click("#end-call")
    analysis = json.loads(page.locator("#analysis").inner_text())
    assert analysis["disposition"] == "refused" and analysis["extracted"]["preferred_date"] is None
    assert json.loads(page.locator("#metadata").input_value()) == METADATA  # "Start again" with the same metadata
    page.screenshot(path=".local/agent-talk.png", full_page=True)


def test_without_a_provider_the_page_says_what_to_set(
    page, admin_login, make_staff_user, tenant, voice_agent, settings
):
    settings.LLM_BASE_URL = ""
    make_staff_user("operator", tenant, role="member")
    admin_login("operator")
    page.goto(f"/admin/calls/agent/{voice_agent.pk}/talk/")
    assert "This agent needs an AI provider: set LLM_BASE_URL" in page.locator("#no-provider").inner_text()
    assert page.locator("#start").is_disabled()


def test_the_talk_page_refuses_viewers_other_tenants_and_bad_posts(
    client, make_staff_user, tenant, other_tenant, voice_agent, llm
):
    make_staff_user("viewer", tenant, role="viewer")
    make_staff_user("stranger", other_tenant, role="admin")
    make_staff_user("member", tenant, role="member")
    url = f"/admin/calls/agent/{voice_agent.pk}/talk/"
    for name in ("viewer", "stranger"):
        client.login(username=name, password="pw-for-tests-1")
        assert client.get(url).status_code == 404
    client.login(username="member", password="pw-for-tests-1")
    response = client.post(url, {"action": "start", "metadata": "[1, 2]"})
    assert response.status_code == 400 and "Metadata must be a JSON object" in response.content.decode()
    response = client.post(url, {"action": "say", "conversation": "not-a-uuid", "text": "hi"})
    assert response.status_code == 400 and "Start a conversation first." in response.content.decode()
    assert llm.calls == 0


def test_a_calls_admin_page_shows_its_transcript(client, make_staff_user, tenant, voice_agent, llm):
    from calls import dialing, runtime, services
    from calls.models import SipTrunk

    trunk = SipTrunk.objects.create(tenant=tenant, name="T", trunk_phone="+14155550126")
    body = {"phone_number": "+14155552671", "agent_id": str(voice_agent.pk), "sip_trunk_id": str(trunk.pk)}
    call = services.trigger_call(tenant, {**body, "metadata": METADATA}).call
    dialing.advance_call(call.pk)  # the first dialer step gives the call its conversation
    call.refresh_from_db()
    runtime.start(call.conversation)
    llm.say("Good to hear, Rahul.")
    runtime.respond(call.conversation, "Yes, it's me")
    make_staff_user("operator", tenant, role="viewer")
    client.login(username="operator", password="pw-for-tests-1")

    page = client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()

    assert "<strong>agent</strong>: Hello Rahul, this is Asha" in page
    assert "<strong>caller</strong>: Yes, it&#x27;s me" in page and "Good to hear, Rahul." in page
