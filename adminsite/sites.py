"""The admin site: Django's, with two-factor sign-in in front of every page and a dashboard as its index.

Every admin page (and the admin session's use of the API, see `tenants.auth`) needs a session that
`tenants.two_factor.is_satisfied`; a staff user who must set up an authenticator is sent to the set-up
page, one who has a device but a session without a code is sent back to sign in.
"""

from __future__ import annotations

from functools import update_wrapper

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp import login as otp_login

from adminsite import dashboard_page
from adminsite.forms import AdminLoginForm, ConfirmDeviceForm
from tenants import two_factor


class SwitchboardAdminSite(admin.AdminSite):
    login_form = AdminLoginForm
    login_template = "adminsite/login.html"
    index_template = "adminsite/index.html"

    def index(self, request, extra_context=None):
        """The admin's first page: the dashboard of one of the user's tenants, then the app list."""
        return super().index(request, {**dashboard_page.context(request), **(extra_context or {})})

    def has_permission(self, request) -> bool:
        return super().has_permission(request) and two_factor.is_satisfied(request.user)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def gated(request, *args, **kwargs):
            user = request.user
            if user.is_active and user.is_staff and not two_factor.is_satisfied(user):
                if request.path == reverse("admin:logout", current_app=self.name):
                    return self._logout(request)
                if two_factor.needs_setup(user):
                    return HttpResponseRedirect(reverse("admin:two_factor_setup", current_app=self.name))
                return redirect_to_login(request.get_full_path(), reverse("admin:login", current_app=self.name))
            return inner(request, *args, **kwargs)

        return update_wrapper(gated, view)

    def _logout(self, request):
        # Logging out must work before set-up is done; Django's wrapper would bounce it to the index.
        return csrf_protect(never_cache(self.logout))(request)

    def login(self, request, extra_context=None):
        user = request.user
        if request.method == "GET" and user.is_active and user.is_staff and two_factor.needs_setup(user):
            return HttpResponseRedirect(reverse("admin:two_factor_setup", current_app=self.name))
        return super().login(request, extra_context)

    def get_urls(self):
        setup = csrf_protect(never_cache(self.two_factor_setup))
        return [path("two-factor/", setup, name="two_factor_setup"), *super().get_urls()]

    def two_factor_setup(self, request):
        """Scan a QR code, type one code to confirm: the new authenticator replaces any previous one."""
        user = request.user
        if not two_factor.may_set_up(user):
            return redirect_to_login(request.get_full_path(), reverse("admin:login", current_app=self.name))
        form = ConfirmDeviceForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                device = two_factor.confirm_pending(user, form.cleaned_data["token"])
            except two_factor.CodeRefused as exc:
                form.add_error("token", str(exc))
            else:
                otp_login(request, device)
                messages.success(request, "Two-factor sign-in is on: from now on, sign in with a code from your app.")
                return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        device = two_factor.pending_device(user)
        uri = two_factor.otpauth_uri(device)
        context = {
            **self.each_context(request),
            "title": "Two-factor sign-in",
            "form": form,
            "qr_svg": two_factor.qr_svg(uri),
            "secret": two_factor.typed_secret(device),
            "has_device": two_factor.has_device(user),
            "required": two_factor.needs_setup(user),
        }
        if not two_factor.is_satisfied(user):
            context["available_apps"] = []  # no app list in the sidebar before the second factor
        request.current_app = self.name
        return TemplateResponse(request, "adminsite/two_factor_setup.html", context)
