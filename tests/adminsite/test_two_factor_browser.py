"""Two-factor sign-in in headless Chromium: set up from the QR page, then sign in with a computed code."""

from __future__ import annotations

import pytest

from tenants.models import Role
from tests.support.totp import totp

pytestmark = pytest.mark.django_db(transaction=True)


def test_set_up_then_sign_in_with_a_code(page, settings, tenant, make_staff_user):
    settings.ADMIN_REQUIRE_2FA = True
    make_staff_user("olga", tenant, Role.OWNER)
    # given a staff user without an authenticator, signing in with the password
    page.goto("/admin/login/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("input[type=submit]")
    # then they land on the set-up page with a QR code drawn as SVG
    page.wait_for_url("**/admin/two-factor/")
    qr = page.locator("#totp-qr svg")
    assert qr.bounding_box()["width"] > 100
    secret = page.locator("#totp-secret").inner_text()
    # when they confirm with the code their app would show
    page.fill("#id_token", totp(secret))
    page.click("#totp-confirm input[type=submit]")
    # then the admin opens
    page.wait_for_url("**/admin/")
    assert "Two-factor sign-in is on" in page.content()
    # and after logging out, the password alone is not enough
    page.click("#logout-form button")
    page.goto("/admin/login/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("input[type=submit]")
    assert "Enter the 6-digit code" in page.locator(".errornote").inner_text()
    # but with the next code it is (the one used for set-up cannot be replayed)
    page.fill("#id_password", "pw-for-tests-1")
    page.fill("#id_otp_token", totp(secret, steps_ahead=1))
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.goto("/admin/tenants/apikey/")
    assert page.locator("#result_list, .paginator").count() >= 1
