"""Admin two-factor sign-in (SPEC §17): TOTP codes, the set-up page, ADMIN_REQUIRE_2FA, add_totp_device."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants import two_factor
from tenants.models import Role
from tests.support.deploy import settings_process
from tests.support.totp import secret_of, totp

PASSWORD = "pw-for-tests-1"


@pytest.fixture
def require_2fa(settings):
    settings.ADMIN_REQUIRE_2FA = True


@pytest.fixture
def olga(make_staff_user, tenant):
    return make_staff_user("olga", tenant, Role.OWNER)


def sign_in(client: Client, code: str = ""):
    return client.post("/admin/login/?next=/admin/", {"username": "olga", "password": PASSWORD, "otp_token": code})


def device_for(user) -> tuple[TOTPDevice, str]:
    device = two_factor.add_device(user)
    return device, secret_of(two_factor.otpauth_uri(device))


def test_without_a_device_the_password_leads_only_to_the_set_up_page(require_2fa, olga, client):
    response = sign_in(client)
    assert response.status_code == 302
    # every admin page sends them to set-up, and the session is not signed in on the API
    for path in ("/admin/", "/admin/tenants/apikey/", "/admin/integrations/connection/"):
        assert client.get(path)["Location"] == "/admin/two-factor/"
    assert client.get("/admin/login/")["Location"] == "/admin/two-factor/"
    assert client.get("/api/v1/api-keys").status_code == 401
    page = client.get("/admin/two-factor/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<svg" in body and 'id="totp-secret"' in body
    assert "API keys" not in body  # no app list before the second factor


def test_confirming_the_set_up_with_a_code_signs_the_session_in(require_2fa, olga, client):
    sign_in(client)
    client.get("/admin/two-factor/")
    pending = TOTPDevice.objects.get(user=olga)
    secret = secret_of(two_factor.otpauth_uri(pending))
    # a wrong code is refused and changes nothing
    wrong = client.post("/admin/two-factor/", {"token": "000000" if totp(secret) != "000000" else "111111"})
    assert wrong.status_code == 200 and "not valid" in wrong.content.decode()
    assert TOTPDevice.objects.get(user=olga).confirmed is False
    # and right after a wrong code even the right one must wait (wrong codes are throttled)
    throttled = client.post("/admin/two-factor/", {"token": totp(secret)})
    assert "Too many wrong codes" in throttled.content.decode()
    assert TOTPDevice.objects.get(user=olga).confirmed is False
    TOTPDevice.objects.filter(user=olga).update(throttling_failure_timestamp=None)
    # reloading keeps the same secret (the QR code scanned a minute ago still works)
    client.get("/admin/two-factor/")
    assert TOTPDevice.objects.get(user=olga).key == pending.key
    # the right one confirms the device and verifies this session
    response = client.post("/admin/two-factor/", {"token": totp(secret)})
    assert response["Location"] == "/admin/"
    assert TOTPDevice.objects.get(user=olga).confirmed is True
    assert client.get("/admin/").status_code == 200
    assert client.get("/api/v1/api-keys").status_code == 200


def test_a_user_with_a_device_must_give_a_valid_code(require_2fa, olga, client):
    _, secret = device_for(olga)
    missing = sign_in(client)
    assert missing.status_code == 200
    assert "Enter the 6-digit code from your authenticator app." in missing.content.decode()
    wrong = sign_in(client, "12345")
    assert "not valid" in wrong.content.decode()
    TOTPDevice.objects.filter(user=olga).update(throttling_failure_timestamp=None)  # skip the throttle's wait
    assert client.get("/admin/").status_code == 302
    code = totp(secret)
    assert sign_in(client, code)["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    # the same code cannot sign in a second session (replay)
    assert "not valid" in sign_in(Client(), code).content.decode()


def test_a_device_is_required_even_when_the_setting_is_off(settings, olga, client):
    settings.ADMIN_REQUIRE_2FA = False
    # without a device the password is enough
    assert sign_in(client)["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    # once a device exists, that password-only session no longer opens the admin or the API
    _, secret = device_for(olga)
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    assert client.get("/api/v1/api-keys").status_code == 401
    # and it cannot enrol another device without the code (a stolen password is not enough)
    assert client.get("/admin/two-factor/")["Location"].startswith("/admin/login/")
    assert client.post("/admin/two-factor/", {"token": "123456"})["Location"].startswith("/admin/login/")
    assert TOTPDevice.objects.filter(user=olga).count() == 1
    fresh = Client()
    assert sign_in(fresh, totp(secret))["Location"] == "/admin/"


def test_a_verified_user_can_replace_their_authenticator(require_2fa, olga, client):
    old, secret = device_for(olga)
    sign_in(client, totp(secret))
    client.get("/admin/two-factor/")
    pending = TOTPDevice.objects.get(user=olga, confirmed=False)
    new_secret = secret_of(two_factor.otpauth_uri(pending))
    assert client.post("/admin/two-factor/", {"token": totp(new_secret)})["Location"] == "/admin/"
    assert list(TOTPDevice.objects.filter(user=olga).values_list("pk", flat=True)) == [pending.pk]
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()


def test_logging_out_works_before_set_up(require_2fa, olga, client):
    sign_in(client)
    assert client.post("/admin/logout/").status_code == 200
    assert client.get("/admin/two-factor/")["Location"].startswith("/admin/login/")


def test_add_totp_device_prints_a_uri_that_signs_in(require_2fa, olga, client):
    out = io.StringIO()
    call_command("add_totp_device", "olga", stdout=out)
    uri = out.getvalue().strip()
    assert uri.startswith("otpauth://totp/Switchboard%3Aolga?secret=")
    assert "issuer=Switchboard" in uri
    assert TOTPDevice.objects.get(user=olga).confirmed is True
    assert sign_in(client, totp(secret_of(uri)))["Location"] == "/admin/"


def test_add_totp_device_replace_and_refusals(olga):
    call_command("add_totp_device", "olga", stdout=io.StringIO())
    call_command("add_totp_device", "olga", "--name", "Second phone", stdout=io.StringIO())
    assert TOTPDevice.objects.filter(user=olga).count() == 2
    call_command("add_totp_device", "olga", "--replace", stdout=io.StringIO())
    assert TOTPDevice.objects.filter(user=olga).count() == 1
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("add_totp_device", "nobody")
    with pytest.raises(CommandError, match="--name"):
        call_command("add_totp_device", "olga", "--name", " ")


@pytest.mark.parametrize(
    ("debug", "override", "expected"), [("false", None, "True"), ("true", None, "False"), ("false", "false", "False")]
)
def test_two_factor_is_required_by_default_in_production(tmp_path, debug, override, expected):
    from cryptography.fernet import Fernet

    env = {"DEBUG": debug, "SECRET_KEY": "s" * 50, "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    if override is not None:
        env["ADMIN_REQUIRE_2FA"] = override
    code = "import django; from django.conf import settings; django.setup(); print(settings.ADMIN_REQUIRE_2FA)"
    result = settings_process(tmp_path, code, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_operators_see_devices_in_the_admin_but_never_their_secrets(olga, admin_client):
    device, secret = device_for(olga)
    listing = admin_client.get("/admin/otp_totp/totpdevice/")
    assert listing.status_code == 200 and "olga" in listing.content.decode()
    page = admin_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert page.status_code == 200
    assert device.key not in page.content.decode() and secret not in page.content.decode()
    assert admin_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/").status_code == 403
