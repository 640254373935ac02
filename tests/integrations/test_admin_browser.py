"""The endpoint test button in a real browser (Debian's headless Chromium)."""

from __future__ import annotations

import pytest

SECRET = "sk-live-0123456789abcdef"


@pytest.mark.browser
def test_endpoint_test_button_shows_request_and_result(
    transactional_db,
    page,
    admin_login,
    make_staff_user,
    tenant,
    make_credential,
    make_connection,
    make_endpoint,
    http_server,
):
    make_staff_user("member-browser", tenant, role="member")
    credential = make_credential("bearer", secrets={"token": SECRET})
    endpoint = make_endpoint(
        make_connection(credential=credential),
        query={"city": "{city}"},
        response_mapping={"method": "method"},
        response_template="Echoed a {{method}} for {{params.city}}",
    )
    admin_login("member-browser")

    page.goto(f"/admin/integrations/endpoint/{endpoint.pk}/change/")
    page.click("a.test-console-link")
    page.fill("textarea[name=params]", '{"city": "Lima"}')
    page.click("#run-test")

    assert page.inner_text("#test-status").startswith("success — HTTP 200")
    assert "city=Lima" in page.inner_text("#test-request")
    assert page.inner_text("#test-say") == "Echoed a GET for Lima"
    assert SECRET not in page.content()
    assert http_server.last.header("Authorization") == f"Bearer {SECRET}"
