from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the OpenAPI descriptions of our authentication classes.
        from django.apps import apps

        from tenants import schema  # noqa: F401
        from tenants.invariants import install_m2m_guards
        from tenants.ratelimit import Limit

        install_m2m_guards(apps.get_models())
        # A malformed limit stops the app at start-up, like every other malformed setting.
        for name in (
            "API_RATE_LIMIT",
            "WIDGET_RATE_SESSION_MESSAGES",
            "WIDGET_RATE_IP_MESSAGES",
            "WIDGET_RATE_IP_SESSIONS",
        ):
            Limit.from_setting(name, getattr(settings, name))
