"""`manage.py add_totp_device <user>`: a confirmed TOTP device for scripted set-ups; prints its otpauth URI."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from tenants import two_factor


class Command(BaseCommand):
    help = (
        "Give a user a confirmed TOTP authenticator for admin sign-in and print its otpauth:// URI "
        "(import it into an authenticator app; it carries the secret, so hand it over privately)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default=two_factor.DEFAULT_DEVICE_NAME, help="The device's name")
        parser.add_argument(
            "--replace", action="store_true", help="Remove the user's other devices (a lost phone, a reset)"
        )

    def handle(self, *args, username: str, name: str, replace: bool, **options) -> None:
        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not name.strip() or len(name) > 64:
            raise CommandError("--name must be 1 to 64 characters.")
        device = two_factor.add_device(user, name=name.strip(), replace=replace)
        if not user.is_staff:
            self.stderr.write(f"Note: {username} is not staff; the device matters once they are.")
        self.stdout.write(two_factor.otpauth_uri(device))
