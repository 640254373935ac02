from __future__ import annotations

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the OpenAPI descriptions of our authentication classes.
        from django.apps import apps

        from tenants import schema  # noqa: F401
        from tenants.invariants import install_m2m_guards

        install_m2m_guards(apps.get_models())
