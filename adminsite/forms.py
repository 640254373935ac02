"""Sign-in with an optional authenticator code, and the code that confirms a new authenticator."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from tenants import two_factor

CODE_WIDGET = forms.TextInput(
    attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": r"[0-9 ]*", "maxlength": "12"}
)


class AdminLoginForm(AdminAuthenticationForm):
    """Password, then the code of the user's authenticator when they have one (required, never skipped)."""

    otp_token = forms.CharField(
        label="Authentication code",
        required=False,
        max_length=12,
        widget=CODE_WIDGET,
        help_text="The 6-digit code from your authenticator app, if you have set one up.",
    )

    def clean(self):
        data = super().clean()
        user = self.get_user()
        if user is None or not two_factor.has_device(user):
            return data
        token = data.get("otp_token") or ""
        if not token.strip():
            raise forms.ValidationError("Enter the 6-digit code from your authenticator app.", code="token_required")
        try:
            device = two_factor.verify(user, token)
        except two_factor.CodeRefused as exc:
            raise forms.ValidationError(str(exc), code=exc.code) from None
        # django-otp's user_logged_in handler stores this device in the session: the session is verified.
        user.otp_device = device
        return data


class ConfirmDeviceForm(forms.Form):
    token = forms.CharField(label="Code from the app", max_length=12, widget=CODE_WIDGET)
