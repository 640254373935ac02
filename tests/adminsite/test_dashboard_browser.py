"""The dashboard in headless Chromium: every chart is drawn, with data, from the app's own files."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tenants.models import Role

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = Path(__file__).resolve().parents[2] / ".local" / "dashboard.png"
# Colours of the marks each chart must draw (adminsite/charts.py).
EXPECTED_COLOURS = {
    "chart-calls": [(0x1A, 0x9E, 0x77), (0x8E, 0x1F, 0x1F)],  # Completed, SIP Call Failed
    "chart-outcomes": [(0x24, 0x57, 0xD6)],
    "chart-api": [(0x24, 0x57, 0xD6), (0xA9, 0xC1, 0xF5)],  # p50 over p95
    "chart-webhooks": [(0x1A, 0x9E, 0x77), (0xD0, 0x45, 0x3A)],  # delivered, failed
    "chart-campaigns": [(0x1A, 0x9E, 0x77), (0x9A, 0xA5, 0xB1), (0xD0, 0x45, 0x3A)],  # completed, pending, failed
}


def pixels_of(image: Image.Image, colour: tuple[int, int, int]) -> int:
    return sum(1 for pixel in image.get_flattened_data() if all(abs(a - b) <= 6 for a, b in zip(pixel, colour)))


def test_dashboard_draws_every_chart_with_data(page, admin_login, tenant, seed_dashboard, make_staff_user):
    seed_dashboard(tenant)
    make_staff_user("olga", tenant, Role.VIEWER)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.set_viewport_size({"width": 1500, "height": 1000})
    admin_login("olga")
    page.locator("#dashboard").wait_for()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.locator("#dashboard").screenshot(path=str(SCREENSHOT))  # kept for a human to look at
    for chart, colours in EXPECTED_COLOURS.items():
        image = Image.open(io.BytesIO(page.locator(f"#{chart}").screenshot())).convert("RGB")
        for colour in colours:
            assert pixels_of(image, colour) > 150, f"{chart} has no marks in #{bytes(colour).hex()}"
    # the numbers are on hover (SVG titles) and beside the charts
    assert page.locator("#chart-calls rect title").count() >= 8
    assert "Billing API" in page.locator("#chart-api table").inner_text()
    assert page.locator("#delivery-rate").inner_text() == "87.5%"
    assert page.locator("#chart-campaigns rect title").count() >= 7  # 5 + 2 segments, and the legend
    assert "9 of 20 (45%)" in page.locator("#chart-campaigns table").inner_text()
    # and nothing came from anywhere but this server
    assert requests and all(url.startswith(page.base_url) for url in requests)
