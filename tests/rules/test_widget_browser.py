"""The chat widget in headless Chromium, on the demo page served by the live server."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from rules import demo
from rules.models import Conversation, WidgetKey
from tenants.models import Tenant
from tests.rules.conftest import reply

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo_tenant(live_server, monkeypatch):
    monkeypatch.setenv("WEB_PORT", str(live_server.url.rsplit(":", 1)[1]))
    tenant = Tenant.objects.create(name="Demo Co", slug="demo")
    demo.load(tenant)
    return tenant


def open_chat(page):
    page.get_by_role("button", name="Open chat").click()
    return page.get_by_label("Your message")


def test_widget_draws_the_reply_and_keeps_the_session_across_reloads(page, live_server, tenant, make_rule):
    make_rule(
        tenant,
        "Greet",
        trigger={"type": "regex", "pattern": r"hello"},
        actions=[reply("<b>Hi</b> from {product_sku}!")],
    )
    key = WidgetKey.objects.create(tenant=tenant, name="Test", allowed_origins=[live_server.url])

    page.goto(f"/widget/demo/?key={key.key}&sku=GADGET-7")
    box = open_chat(page)
    assert page.evaluate("document.activeElement.id") == box.get_attribute("id")
    box.fill("hello there")
    box.press("Enter")

    answer = page.locator(".swb-assistant .swb-text").first
    answer.wait_for()
    assert answer.text_content() == "<b>Hi</b> from GADGET-7!"  # drawn as text, never as markup
    assert page.locator(".swb-assistant b").count() == 0
    assert page.locator(".swb-visitor .swb-text").first.text_content() == "hello there"
    assert Conversation.objects.get(channel="widget").variables == {"product_sku": "GADGET-7"}

    page.reload()
    open_chat(page)
    page.locator(".swb-assistant .swb-text").first.wait_for()
    assert page.locator(".swb-message .swb-text").all_text_contents() == ["hello there", "<b>Hi</b> from GADGET-7!"]
    assert Conversation.objects.filter(channel="widget").count() == 1

    # The stored session disappears server-side: the widget opens a new one and still answers.
    Conversation.objects.all().delete()
    box = page.get_by_label("Your message")
    box.fill("hello again")
    box.press("Enter")
    page.locator(".swb-assistant").nth(1).wait_for()
    assert Conversation.objects.get(channel="widget").messages.filter(role="visitor").get().text == "hello again"

    page.keyboard.press("Escape")
    assert page.locator(".swb-panel").is_hidden()


def test_demo_page_answers_the_two_recipes_through_the_demo_api(page, demo_tenant):
    page.goto("/widget/demo/")
    box = open_chat(page)
    box.fill("How much does this cost?")
    box.press("Enter")
    page.locator(".swb-assistant").nth(0).wait_for()
    box.fill("Where is my order #12345?")
    box.press("Enter")
    page.locator(".swb-assistant").nth(1).wait_for()
    box.fill("Do you ship to Mars?")
    box.press("Enter")
    page.locator(".swb-assistant").nth(2).wait_for()

    replies = page.locator(".swb-assistant .swb-text").all_text_contents()
    assert replies[0] == "The current price is 49.9 EUR."
    assert replies[1].startswith("Order 12345 is ")
    assert "expected delivery 2026-11-" in replies[1]
    assert replies[2].startswith("I can tell you the price")
    conversation = Conversation.objects.get(tenant=demo_tenant)
    assert conversation.variables["current_price"] == 49.9
    assert conversation.variables["order_status"] in {"processing", "shipped", "out for delivery", "delivered"}


def test_a_page_on_an_origin_that_is_not_allowed_cannot_open_a_session(page, live_server, tenant):
    key = WidgetKey.objects.create(tenant=tenant, name="Elsewhere", allowed_origins=["https://shop.example"])
    page.goto(f"/widget/demo/?key={key.key}")
    box = open_chat(page)
    box.fill("hello")
    box.press("Enter")
    status = page.locator(".swb-status")
    status.filter(has_text="").wait_for()
    page.wait_for_function("document.querySelector('.swb-status').textContent !== 'Sending…'")
    assert page.locator(".swb-assistant").count() == 0
    assert not Conversation.objects.exists()


def test_the_bubble_draws_its_icon_as_inline_svg(page, live_server, tenant):
    # given the widget on a page
    key = WidgetKey.objects.create(tenant=tenant, name="Test", allowed_origins=[live_server.url])
    page.goto(f"/widget/demo/?key={key.key}")
    bubble = page.get_by_role("button", name="Open chat")
    # then its icon is an SVG path, not an emoji that needs a colour-emoji font
    icon = bubble.locator("svg.swb-bubble-icon path")
    assert icon.count() == 1
    assert bubble.text_content() == ""
    box = bubble.locator("svg").bounding_box()
    assert box["width"] >= 20 and box["height"] >= 20
    # and the icon's white shape is drawn on the blue bubble (pixels, not a blank box)
    image = Image.open(io.BytesIO(bubble.screenshot())).convert("RGB")
    white = sum(1 for r, g, b in image.get_flattened_data() if r > 230 and g > 230 and b > 230)
    assert white > 100
