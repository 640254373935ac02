"""Admin two-factor sign-in: TOTP devices (django-otp), who must give a code, set-up and confirmation.

A staff user must be verified by a code when `ADMIN_REQUIRE_2FA` is on, and always once they have a
confirmed device (a code someone set up is never skipped). A user without a device signs in with their
password and is held on the set-up page until they confirm one; a user with a device cannot reach the
set-up page without first signing in with a code, so a stolen password cannot enrol a new device.
"""

from __future__ import annotations

import base64
import logging

import segno
from django.conf import settings
from django.db import transaction
from django_otp import devices_for_user, user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

logger = logging.getLogger(__name__)

DEFAULT_DEVICE_NAME = "Authenticator app"


def has_device(user) -> bool:
    """Whether `user` has a confirmed TOTP device."""
    return bool(user.is_authenticated) and user_has_device(user, confirmed=True)


def is_required(user) -> bool:
    """Whether `user` must be verified by a code to use the admin (and its session on the API)."""
    return settings.ADMIN_REQUIRE_2FA or has_device(user)


def is_satisfied(user) -> bool:
    """Whether `user`'s session may use the admin: verified by a code, or no code required."""
    if getattr(user, "is_verified", None) is not None and user.is_verified():
        return True
    return not is_required(user)


def needs_setup(user) -> bool:
    """A code is required but the user has no device yet: the set-up page is the only page for them."""
    return settings.ADMIN_REQUIRE_2FA and not has_device(user)


def may_set_up(user) -> bool:
    """Who may (re)configure their authenticator: a verified session, or a user with no device at all."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return bool(user.is_verified()) or not has_device(user)


def pending_device(user) -> TOTPDevice:
    """The user's unconfirmed device (created on first use), so reloading the set-up page keeps its QR code."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name=DEFAULT_DEVICE_NAME, confirmed=False)


class CodeRefused(Exception):
    """A code was not accepted; `code` is "invalid" or "throttled" (too many wrong codes: wait)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _invalid() -> CodeRefused:
    return CodeRefused("invalid", "That code is not valid (or was already used). Try the next one.")


def _check(device: TOTPDevice, token: str) -> CodeRefused | None:
    """None when `token` is accepted; the refusal otherwise (the failure is already counted)."""
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        # Each wrong code doubles the wait before the next try (django-otp's throttling).
        return CodeRefused("throttled", "Too many wrong codes: wait a few seconds, then try the next code.")
    return None if device.verify_token(_digits(token)) else _invalid()


# The refusals are raised after the transaction commits: raising inside it would roll back the
# failure count that throttles guessing.


def confirm_pending(user, token: str) -> TOTPDevice:
    """Confirm the pending device with a code from it; it replaces the user's other devices.

    Raises CodeRefused when the code is wrong or the device is throttled.
    """
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-id").first()
        refusal = _invalid() if device is None else _check(device, token)
        if refusal is None:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    if refusal is not None:
        raise refusal
    logger.info("two-factor device confirmed", extra={"user_id": user.pk})
    return device


def verify(user, token: str) -> TOTPDevice:
    """The confirmed device that accepts `token` at sign-in; raises CodeRefused."""
    refusal = _invalid()
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            outcome = _check(device, token)
            if outcome is None:
                return device
            if outcome.code == "throttled":
                refusal = outcome
    raise refusal


def add_device(user, *, name: str = DEFAULT_DEVICE_NAME, replace: bool = False) -> TOTPDevice:
    """A confirmed device for scripted set-ups (`manage.py add_totp_device`); `replace` drops the others."""
    with transaction.atomic():
        if replace:
            TOTPDevice.objects.filter(user=user).delete()
        return TOTPDevice.objects.create(user=user, name=name, confirmed=True)


def otpauth_uri(device: TOTPDevice) -> str:
    """The `otpauth://totp/…` URI an authenticator app imports (it carries the secret: show it once)."""
    return device.config_url


def typed_secret(device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for typing into an app that cannot scan."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (drawn on the server: no image request, no third party)."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#000", light="#fff")


def _digits(token: str) -> str:
    # Authenticator apps show "123 456"; people paste it with the space.
    return "".join((token or "").split())
