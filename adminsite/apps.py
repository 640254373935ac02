from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AdminsiteConfig(AppConfig):
    """The admin's own pages: the per-tenant dashboard (its first page) and two-factor sign-in."""

    name = "adminsite"
    default = True


class SwitchboardAdminConfig(admin_apps.AdminConfig):
    """Django's admin app with our site (listed in INSTALLED_APPS instead of django.contrib.admin)."""

    default = False
    default_site = "adminsite.sites.SwitchboardAdminSite"
